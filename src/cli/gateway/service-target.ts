import { resolvePaths } from '../../config/paths'
import { serviceContext, serviceManager } from '../../service'
import { serviceName } from '../../service/spec'

/** The config keys service-status and service-start read: where the gateway listens. */
export const ADDRESS_NEEDS = ['gateway.host', 'gateway.port']

/**
 * The manager of this platform, the paths of the config in use, and the name of its service entry. On a
 * platform without one, its ServiceError is the sentence the command ends with.
 */
export function serviceTarget(configFlag: string | undefined) {
  const ctx = serviceContext()
  const manager = serviceManager(ctx)
  const paths = resolvePaths({ env: process.env, configFlag })
  return { ctx, manager, paths, name: serviceName(manager.kind, paths) }
}
