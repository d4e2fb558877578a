#!/usr/bin/env bun
import { VERSION } from './version'

process.on('unhandledRejection', (reason) => {
  console.error('unhandled rejection:', reason)
})

// `--version` (`-V`, `-v`, `version`) is answered before the CLI (citty, the command tree) is loaded: it then
// costs what an empty program costs. Same rule as main(): `--verbose` is ignored, and it must be the only argument.
const argv = process.argv.slice(2)
const args = argv.filter((a) => a !== '--verbose')
if (args.length === 1 && ['--version', '-v', '-V', 'version'].includes(args[0]!)) {
  console.log(VERSION)
  process.exit(0)
}

const { main } = await import('./cli/main')
process.exit(await main(argv))
