import { z } from 'zod'
import { ConfigError } from '../errors'
import { describeIssues } from '../validation'
import type { Env } from './paths'
import { Host, Port, Token, type Config } from './schema'

/** Gateway settings given on the command line (already validated by the CLI). */
export interface GatewayFlags {
  host?: string | undefined
  port?: number | undefined
  token?: string | undefined
}

const GatewayEnv = z.object({
  XOPCBOT_GATEWAY_HOST: Host.optional(),
  XOPCBOT_GATEWAY_PORT: z
    .string()
    .regex(/^\d+$/, 'must be a whole number from 1 to 65535')
    .transform(Number)
    .pipe(Port)
    .optional(),
  XOPCBOT_GATEWAY_TOKEN: Token.optional(),
})

const nonEmpty = (value: string | undefined) => (value === undefined || value === '' ? undefined : value)

/**
 * The effective config: CLI flag > environment > config file > default (SPEC §3). Returns a new object;
 * the loaded config is not changed.
 */
export function applyGatewayOverrides(config: Config, env: Env, flags: GatewayFlags = {}): Config {
  const parsed = GatewayEnv.safeParse({
    XOPCBOT_GATEWAY_HOST: nonEmpty(env.XOPCBOT_GATEWAY_HOST),
    XOPCBOT_GATEWAY_PORT: nonEmpty(env.XOPCBOT_GATEWAY_PORT),
    XOPCBOT_GATEWAY_TOKEN: nonEmpty(env.XOPCBOT_GATEWAY_TOKEN),
  })
  if (!parsed.success) throw new ConfigError('environment', describeIssues(parsed.error.issues))
  const fromEnv = parsed.data
  return {
    ...config,
    gateway: {
      ...config.gateway,
      host: flags.host ?? fromEnv.XOPCBOT_GATEWAY_HOST ?? config.gateway.host,
      port: flags.port ?? fromEnv.XOPCBOT_GATEWAY_PORT ?? config.gateway.port,
      auth: { token: flags.token ?? fromEnv.XOPCBOT_GATEWAY_TOKEN ?? config.gateway.auth.token },
    },
  }
}
