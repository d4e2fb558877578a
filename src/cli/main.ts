import { renderUsage, runCommand, type CommandDef } from 'citty'
import { AppError, ConfigError, ExitCode, UsageError } from '../errors'
import { VERSION } from '../version'
import { root } from './index'

async function resolveValue<T>(value: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof value === 'function' ? (value as () => T | Promise<T>)() : value
}

/**
 * The command named by the leading words of argv (`gateway`, `gateway status`, …), its parent, and the
 * arguments left for it. Dispatching to the leaf ourselves keeps citty from also running the parent.
 */
async function resolveCommand(argv: string[]): Promise<{ command: CommandDef<any>; parent?: CommandDef<any>; rest: string[] }> {
  let command: CommandDef<any> = root
  let parent: CommandDef<any> | undefined
  let index = 0
  while (index < argv.length) {
    const word = argv[index]!
    if (word.startsWith('-')) break
    const subCommands = await resolveValue(command.subCommands)
    const next = subCommands?.[word]
    if (!next) break
    parent = command
    command = await resolveValue(next)
    index++
  }
  return { command, ...(parent ? { parent } : {}), rest: argv.slice(index) }
}

/** Whether the arguments run the gateway itself (`xopcbot gateway [flags]`): the one command that lives long. */
const runsGateway = (args: string[]) => args[0] === 'gateway' && (args.length === 1 || args[1]!.startsWith('-'))

/** Runs the CLI and resolves to the exit code. Errors are one sentence; stacks only with --verbose. */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose')
  const args = argv.filter((a) => a !== '--verbose')
  const beforeDashes = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  try {
    if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
      const { command, parent } = await resolveCommand(beforeDashes)
      console.log((await renderUsage(command, parent)) + '\n')
      return ExitCode.OK
    }
    if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
      console.log(VERSION)
      return ExitCode.OK
    }
    if (args.length === 0) {
      console.log((await renderUsage(root)) + '\n')
      return ExitCode.USAGE
    }
    // Here, before the command's modules load and build their schemas.
    if (!runsGateway(args)) (await import('./args')).parseEachSchemaOnce()
    const { command, rest } = await resolveCommand(args)
    if (command === root) throw new UsageError(`unknown command ${JSON.stringify(args[0])}`)
    if (!command.run) throw new UsageError(rest[0] ? `unknown command ${JSON.stringify(rest[0])}` : 'a sub-command is needed (see --help)')
    const { result } = await runCommand({ ...command, subCommands: undefined }, { rawArgs: rest })
    return typeof result === 'number' ? result : ExitCode.OK
  } catch (error) {
    return report(error, verbose)
  }
}

function report(error: unknown, verbose: boolean): number {
  // Every error of the family (errors.ts) is a sentence with its exit code.
  if (error instanceof AppError) {
    console.error(`❌ ${error.message}`)
    if (error.exitCode === ExitCode.USAGE) console.error(`Run "xopcbot --help" for usage.`)
    if (error instanceof ConfigError) console.error(error.source.startsWith('config ') ? 'The config file was not changed. Fix it and start again.' : 'Fix it and start again.')
    if (verbose && error.stack) console.error(error.stack)
    return error.exitCode
  }
  if (error instanceof Error && error.name === 'CLIError') {
    // citty's own argument errors (unknown command, …)
    console.error(`❌ ${error.message.replace(/\x1b\[[0-9;]*m/g, '')}`)
    console.error(`Run "xopcbot --help" for usage.`)
    return ExitCode.USAGE
  }
  const message = error instanceof Error ? error.message : String(error)
  console.error(`❌ Unexpected error: ${message}`)
  if (verbose && error instanceof Error && error.stack) console.error(error.stack)
  else console.error('Run again with --verbose for details.')
  return ExitCode.FAILURE
}
