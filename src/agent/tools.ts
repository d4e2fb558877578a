import { tool, type ToolSet } from 'ai'
import { z } from 'zod'
import type { Config } from '../config/schema'

/** A tool the model may call: a zod input schema and what it does. */
export interface AgentTool<Input = any> {
  name: string
  description: string
  input: z.ZodType<Input>
  run: (input: Input) => Promise<unknown> | unknown
}

export function timeTool(defaultTimeZone: string, now: () => Date = () => new Date()): AgentTool<{ timezone?: string | undefined }> {
  return {
    name: 'time',
    description: 'The current date and time. Optionally in a given IANA time zone (default: the configured one).',
    input: z.object({ timezone: z.string().optional().describe('IANA time zone such as "Europe/Berlin"') }),
    run: ({ timezone }) => {
      const zone = timezone ?? defaultTimeZone
      const date = now()
      try {
        const local = new Intl.DateTimeFormat('en-GB', { timeZone: zone, dateStyle: 'full', timeStyle: 'long' }).format(date)
        return { iso: date.toISOString(), timezone: zone, local }
      } catch {
        return { error: `unknown time zone ${JSON.stringify(zone)}` }
      }
    },
  }
}

/** The tools offered to the model: those listed in `agent.tools` that this gateway provides. */
export function toolSet(config: Pick<Config, 'agent' | 'cron'>, available: AgentTool[]): ToolSet {
  const set: ToolSet = {}
  for (const t of available) {
    if (!config.agent.tools.includes(t.name as never)) continue
    set[t.name] = tool({ description: t.description, inputSchema: t.input, execute: async (input) => t.run(input) })
  }
  return set
}
