import { readFileSync } from 'node:fs'

/** Reading /proc on Linux: the boot id and a process's state, start time and name. */
let bootId: string | null | undefined

export function linuxBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      bootId = null
    }
  }
  return bootId
}

/** State and start time of a Linux process from /proc/<pid>/stat, or null when there is no such process. */
export function linuxStat(pid: number): { state: string; startTime: string | null; name: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = fields[19]
    return { state: fields[0] ?? '?', startTime: ticks ? `${linuxBootId() ?? 'boot'}:${ticks}` : null, name }
  } catch {
    return null
  }
}