import type { ArgDef, CommandDef, Resolvable } from 'citty'
import { VERSION } from '../version'
import { isHidden } from './args'
import { colorEnabled, palette, type Paint } from './output'

/** What main() answers itself, listed with the root's commands. */
const BUILTIN_COMMANDS: [string, string][] = [
  ['help', 'Show the help of a command, e.g. xopcbot help gateway status'],
  ['version', 'Print the version (also --version, -V)'],
]

/** The flags every command takes, listed in the root's help. */
const GLOBAL_OPTIONS: [string, string][] = [
  ['-h, --help', 'Show the help of a command'],
  ['-V, -v, --version', 'Print the version'],
  ['--verbose', 'Show the stack of an unexpected error'],
]

async function resolve<T>(value: Resolvable<T> | undefined): Promise<T | undefined> {
  const resolved = typeof value === 'function' ? (value as () => T | Promise<T>)() : value
  return await resolved
}

function valueHint(name: string, arg: ArgDef): string {
  if (arg.type === 'positional' || arg.type === 'boolean' || !arg.type) return ''
  if (arg.type === 'enum' && arg.options?.length) return `=<${arg.options.join('|')}>`
  return `=<${arg.valueHint ?? name.replace(/-/g, '_')}>`
}

/** Rows as two columns: the first right-aligned (as citty does), the second as it is. */
function columns(rows: [string, string][], paint: Paint): string {
  const width = Math.max(...rows.map(([first]) => first.length))
  return rows.map(([first, second]) => `  ${paint(first.padStart(width))}    ${second}`.trimEnd()).join('\n')
}

/**
 * The help of a command, laid out as citty's renderUsage lays it out, with what that one gets wrong for us: the
 * usage line names the whole command (`xopcbot gateway status`, not `gateway status`), required positionals
 * show as `<ID>`, a flag that is on by default shows once, as its `--no-` form, hidden flags are left out, colour
 * follows colorEnabled(), and no line ends in padding. Loaded only when help is asked for.
 * `names`: the words that name the command, from the program on (`['xopcbot', 'cron', 'rm']`).
 */
export async function renderHelp(names: string[], command: CommandDef<any>, color = colorEnabled(process.stdout)): Promise<string> {
  const c = palette(color)
  const meta = (await resolve(command.meta)) ?? {}
  const args = Object.entries((await resolve(command.args)) ?? {}) as [string, ArgDef][]
  const name = names.join(' ')
  const isRoot = names.length === 1

  const usage: string[] = []
  const positionals: [string, string][] = []
  const options: [string, string][] = []
  const hint = c.gray
  for (const [argName, arg] of args) {
    if (isHidden(arg)) continue
    if (arg.type === 'positional') {
      const upper = argName.toUpperCase()
      const required = arg.required === true && arg.default === undefined
      positionals.push([upper, [arg.description, required && hint('(Required)')].filter(Boolean).join(' ')])
      usage.push(required ? `<${upper}>` : `[${upper}]`)
      continue
    }
    const required = arg.required === true && arg.default === undefined
    const aliases = ['alias' in arg ? (arg.alias ?? []) : []].flat()
    if (arg.type === 'boolean' && arg.default === true) {
      // On unless turned off: only the way to turn it off is worth a line.
      options.push([[...aliases.map((a) => `--no-${a}`), `--no-${argName}`].join(', '), arg.negativeDescription ?? `Turn off: ${arg.description ?? argName}`])
      continue
    }
    const defaultHint = arg.default === undefined ? '' : hint(`(Default: ${arg.default})`)
    options.push([[...aliases.map((a) => `-${a}`), `--${argName}`].join(', ') + valueHint(argName, arg), [arg.description, required && hint('(Required)'), defaultHint].filter(Boolean).join(' ')])
    if (arg.type === 'boolean' && arg.negativeDescription) options.push([`--no-${argName}`, arg.negativeDescription])
    if (required) usage.push(`--${argName}${valueHint(argName, arg)}`)
  }
  if (isRoot) options.push(...GLOBAL_OPTIONS)

  const commands: [string, string][] = []
  const subCommands = await resolve(command.subCommands)
  if (subCommands) {
    for (const [subName, sub] of Object.entries(subCommands)) {
      const subMeta = await resolve((await resolve(sub))?.meta)
      if (subMeta?.hidden) continue
      commands.push([subName, subMeta?.description ?? ''])
    }
    if (isRoot) commands.push(...BUILTIN_COMMANDS)
    usage.push(commands.map(([subName]) => subName).join('|'))
  }

  const lines = [c.gray(`${meta.description ?? ''} (${name} v${VERSION})`), '']
  lines.push(`${c.underline(c.bold('USAGE'))} ${c.cyan([name, options.length ? '[OPTIONS]' : '', ...usage].filter(Boolean).join(' '))}`, '')
  if (positionals.length) lines.push(c.underline(c.bold('ARGUMENTS')), '', columns(positionals, c.cyan), '')
  if (options.length) lines.push(c.underline(c.bold('OPTIONS')), '', columns(options, c.cyan), '')
  if (commands.length) {
    lines.push(c.underline(c.bold('COMMANDS')), '', columns(commands, c.cyan), '')
    lines.push(`Use ${c.cyan(`${name} <command> --help`)} for more information about a command.`)
  }
  return lines.join('\n').trimEnd()
}
