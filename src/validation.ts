import type { z } from 'zod'

type Issue = z.core.$ZodIssue

/** `['gateway', 'cors', 'origins', 0]` → `gateway.cors.origins[0]` */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out ? `.${String(part)}` : String(part)
  }
  return out
}

function describe(issue: Issue): string {
  const message = issue.message.replace(/^Invalid input: /, '')
  if (issue.code === 'invalid_type' && /received undefined$/.test(message)) return 'is required'
  // With `reportInput`, a missing value is known even when the schema has its own message (unions, …).
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && 'input' in issue && issue.input === undefined) return 'is required'
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return `must have a valid "${String(issue.discriminator ?? 'type')}"`
  }
  return message
}

/**
 * Turns zod issues into sentences that name the field: `gateway.port: must be from 1 to 65535`.
 * `prefix` is prepended to every path (e.g. "body", "--port").
 */
export function describeIssues(issues: readonly Issue[], prefix: ReadonlyArray<PropertyKey> = []): string[] {
  const out: string[] = []
  for (const issue of issues) {
    const path = [...prefix, ...issue.path]
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${formatPath([...path, key])}: unknown key`)
      continue
    }
    const where = formatPath(path)
    out.push(where ? `${where}: ${describe(issue)}` : describe(issue))
  }
  return out
}
