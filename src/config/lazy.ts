import type * as Load from './load'
import type * as Settings from './settings'

// loadConfig and readTokenFile, each module loaded at the first call. Both build the config schema, a quarter of
// what `gateway status` of a stopped gateway cost (~5 ms), and the process control (lifecycle/control.ts) imports
// them for the token alone, which most of its callers never ask for. require() keeps the calls synchronous; the
// bundler puts a required module in a chunk of its own, loaded at the call.

export const loadConfig: typeof Load.loadConfig = (...args) => (require('./load') as typeof Load).loadConfig(...args)
export const readTokenFile: typeof Settings.readTokenFile = (...args) => (require('./settings') as typeof Settings).readTokenFile(...args)
