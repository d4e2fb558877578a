import { z } from 'zod'
import { Config, McpHttpServer, McpStdioServer, TelegramChannel } from '../../config/schema'
import type { KeyPath } from '../../config/edit'

type JsonSchema = Record<string, any>

/**
 * The JSON Schema of the config file, for editors (`"$schema": "./config.schema.json"`): what may be written,
 * so defaults make keys optional (`io: 'input'`). Draft 7, which every JSON editor understands.
 */
export function configJsonSchema(): JsonSchema {
  const schema = z.toJSONSchema(Config, {
    io: 'input',
    target: 'draft-7',
    unrepresentable: 'any',
    override(ctx) {
      // The loader fills these in before validation (see the preprocess steps in schema.ts), so a file may leave
      // them out: an MCP server's transport follows from command/url, a channel named "telegram" is one.
      const json = ctx.jsonSchema as JsonSchema
      const zod = ctx.zodSchema as unknown
      if (zod === McpStdioServer || zod === McpHttpServer) json.required = json.required?.filter((k: string) => k !== 'transport')
      if (zod === TelegramChannel) {
        json.required = json.required?.filter((k: string) => k !== 'type')
        if (!json.required?.length) delete json.required
      }
    },
  }) as JsonSchema
  return { ...schema, title: 'xopcbot config' }
}

/** The alternatives of a schema node: the node itself, or the branches of its anyOf / oneOf / allOf, and $refs. */
function branches(root: JsonSchema, node: JsonSchema | boolean | undefined, seen = 0): JsonSchema[] {
  if (!node || typeof node !== 'object' || seen > 32) return []
  if (typeof node.$ref === 'string') {
    const target = node.$ref.replace(/^#\//, '').split('/').reduce((at: any, part: string) => at?.[part], root)
    return branches(root, target, seen + 1)
  }
  const alternatives = [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])]
  return alternatives.length ? alternatives.flatMap((b: JsonSchema) => branches(root, b, seen + 1)) : [node]
}

/**
 * The JSON types (`string`, `integer`, `boolean`, …) the config accepts at `path`; empty when the path is not a
 * config key. `any` where the schema does not say.
 */
export function typesAt(schema: JsonSchema, path: KeyPath): Set<string> {
  let nodes = branches(schema, schema)
  for (const part of path) {
    const next: JsonSchema[] = []
    for (const node of nodes) {
      if (typeof part === 'string' && node.properties && Object.hasOwn(node.properties, part)) next.push(...branches(schema, node.properties[part]))
      else if (typeof part === 'string' && node.additionalProperties && typeof node.additionalProperties === 'object') next.push(...branches(schema, node.additionalProperties))
      else if ((typeof part === 'number' || /^\d+$/.test(part)) && node.items && typeof node.items === 'object') next.push(...branches(schema, node.items))
      else if (!node.type && !node.properties && !node.items && !node.const && !node.enum) next.push({})
    }
    nodes = next
  }
  const types = new Set<string>()
  for (const node of nodes) {
    if (node.type) for (const type of [node.type].flat()) types.add(type)
    else if ('const' in node || node.enum) for (const value of node.enum ?? [node.const]) types.add(value === null ? 'null' : typeof value)
    else types.add('any')
  }
  return types
}

/**
 * A value given as text without --json: a string, except where the config takes no string at that key. There
 * `true`/`false` become booleans, a number a number and `null` null, when the key takes that type; anything else
 * stays a string, and validation names the problem.
 */
export function coerceText(text: string, types: Set<string>): unknown {
  if (types.has('string') || types.has('any') || types.size === 0) return text
  if ((text === 'true' || text === 'false') && types.has('boolean')) return text === 'true'
  if (text === 'null' && types.has('null')) return null
  if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(text)) {
    const number = Number(text)
    if (types.has('number') || (types.has('integer') && Number.isInteger(number))) return number
  }
  return text
}
