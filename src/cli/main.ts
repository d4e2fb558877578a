import { runCommand, type ArgsDef, type CommandDef } from 'citty'
import { AppError, ConfigError, ExitCode, UsageError } from '../errors'
import { VERSION } from '../version'
import { root } from './index'

async function resolveValue<T>(value: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof value === 'function' ? (value as () => T | Promise<T>)() : value
}

interface Resolved {
  command: CommandDef<any>
  /** the words that name it, from the program on: `['xopcbot', 'gateway', 'status']` */
  names: string[]
  rest: string[]
}

/**
 * The command named by the leading words of argv (`gateway`, `gateway status`, …) and the arguments left for
 * it. Dispatching to the leaf ourselves keeps citty from also running the parent.
 */
async function resolveCommand(argv: string[]): Promise<Resolved> {
  let command: CommandDef<any> = root
  const names = ['xopcbot']
  let index = 0
  while (index < argv.length) {
    const word = argv[index]!
    if (word.startsWith('-')) break
    const subCommands = await resolveValue(command.subCommands)
    const next = subCommands?.[word]
    if (!next) break
    command = await resolveValue(next)
    names.push(word)
    index++
  }
  return { command, names, rest: argv.slice(index) }
}

/** What main() answers itself at the root, next to the command tree. */
const BUILTINS = ['help', 'version']

/** `unknown command "cron lst"; did you mean "cron list"?` (the suggestion: when a sub-command is that close) */
async function unknownCommand({ command, names }: Resolved, word: string): Promise<{ error: UsageError; suggestion?: string }> {
  const { closest, didYouMean } = await import('./args')
  const candidates = [...Object.keys((await resolveValue(command.subCommands)) ?? {}), ...(command === root ? BUILTINS : [])]
  const suggestion = closest(word, candidates)
  const spoken = (last: string) => JSON.stringify([...names.slice(1), last].join(' '))
  const error = new UsageError(`unknown command ${spoken(word)}${didYouMean(suggestion && spoken(suggestion))}`)
  return suggestion ? { error, suggestion } : { error }
}

/** The command the words name, for help: every word must name one (a typo is an error, not the parent's help). */
async function commandForHelp(words: string[]): Promise<Resolved> {
  const resolved = await resolveCommand(words)
  const word = resolved.rest[0]
  if (word !== undefined && !word.startsWith('-') && resolved.command.subCommands) throw (await unknownCommand(resolved, word)).error
  return resolved
}

async function printHelp({ command, names }: Resolved) {
  const { renderHelp } = await import('./help')
  console.log((await renderHelp(names, command)) + '\n')
}

/**
 * The commands check their required arguments themselves, with messages that say what to do next; `required`
 * in a definition is for the help. So citty is given the arguments as optional.
 */
function optional(args: ArgsDef): ArgsDef {
  return Object.fromEntries(Object.entries(args).map(([name, arg]) => [name, arg.required ? { ...arg, required: false } : arg]))
}

const isVersionFlag = (word: string | undefined) => word === '--version' || word === '-v' || word === '-V'
/** `--help=…` asks for help too: as a flag the commands would take it for nothing and run. */
const isHelpFlag = (word: string) => word === '--help' || word === '-h' || word.startsWith('--help=')

/** Whether the arguments run the gateway itself (`xopcbot gateway [flags]`): the one command that lives long. */
const runsGateway = (args: string[]) => args[0] === 'gateway' && (args.length === 1 || args[1]!.startsWith('-'))

/** Runs the CLI and resolves to the exit code. Errors are one sentence; stacks only with --verbose. */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose')
  const args = argv.filter((a) => a !== '--verbose')
  const beforeDashes = args.includes('--') ? args.slice(0, args.indexOf('--')) : args
  // Where a usage error points to: the help of the command it is about, once that is known.
  let helpOf = 'xopcbot'
  try {
    if (args[0] === 'help') {
      const resolved = await commandForHelp(args.slice(1).filter((a) => a !== '--help' && a !== '-h'))
      await printHelp(resolved)
      return ExitCode.OK
    }
    if (beforeDashes.some(isHelpFlag)) {
      await printHelp(await commandForHelp(beforeDashes))
      return ExitCode.OK
    }
    if (args.length === 1 && (isVersionFlag(args[0]) || args[0] === 'version')) {
      console.log(VERSION)
      return ExitCode.OK
    }
    if (args.length === 0) {
      await printHelp({ command: root, names: ['xopcbot'], rest: [] })
      return ExitCode.USAGE
    }
    // Here, before the command's modules load and build their schemas.
    if (!runsGateway(args)) (await import('./args')).parseEachSchemaOnce()
    const resolved = await resolveCommand(args)
    const { command, names, rest } = resolved
    helpOf = names.join(' ')
    const word = rest[0]
    if (command === root) {
      if (word === 'version' || isVersionFlag(word)) throw new UsageError(`unexpected argument ${JSON.stringify(rest[1])}`)
      if (word!.startsWith('-')) {
        const { closest, didYouMean } = await import('./args')
        const suggestion = word!.startsWith('--') ? closest(word!.slice(2), ['help', 'version', 'verbose']) : undefined
        throw new UsageError(`unknown option ${word}${didYouMean(suggestion && `--${suggestion}`)}`)
      }
      throw (await unknownCommand(resolved, word!)).error
    }
    if (word !== undefined && !word.startsWith('-') && command.subCommands) {
      // A word where a sub-command goes. `gateway` runs with flags only, so there a word is either a typo of a
      // sub-command (said so) or a stray argument (said so by the command's own checks).
      const { error, suggestion } = await unknownCommand(resolved, word)
      if (!command.run || suggestion) throw error
    }
    if (!command.run) {
      const commands = Object.keys((await resolveValue(command.subCommands)) ?? {})
      throw new UsageError(`${JSON.stringify(names.slice(1).join(' '))} needs a command: ${commands.join(', ')}`)
    }
    const commandArgs = optional((await resolveValue(command.args)) ?? {})
    const { result } = await runCommand({ ...command, args: commandArgs, subCommands: undefined }, { rawArgs: rest })
    return typeof result === 'number' ? result : ExitCode.OK
  } catch (error) {
    return report(error, verbose, helpOf)
  }
}

function report(error: unknown, verbose: boolean, helpOf: string): number {
  // Every error of the family (errors.ts) is a sentence with its exit code.
  if (error instanceof AppError) {
    console.error(`❌ ${error.message}`)
    if (error.exitCode === ExitCode.USAGE) console.error(`Run "${helpOf} --help" for usage.`)
    if (error instanceof ConfigError) console.error(error.source.startsWith('config ') ? 'The config file was not changed. Fix it and start again.' : 'Fix it and start again.')
    if (verbose && error.stack) console.error(error.stack)
    return error.exitCode
  }
  if (error instanceof Error && error.name === 'CLIError') {
    // citty's own argument errors; its messages may carry colour codes.
    console.error(`❌ ${error.message.replace(/\x1b\[[0-9;]*m/g, '')}`)
    console.error(`Run "${helpOf} --help" for usage.`)
    return ExitCode.USAGE
  }
  const message = error instanceof Error ? error.message : String(error)
  console.error(`❌ Unexpected error: ${message}`)
  if (verbose && error instanceof Error && error.stack) console.error(error.stack)
  else console.error('Run again with --verbose for details.')
  return ExitCode.FAILURE
}
