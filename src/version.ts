import pkg from '../package.json' with { type: 'json' }

/** The version, from package.json; the bundler inlines it, so a compiled binary carries its own. */
export const VERSION: string = pkg.version
