/**
 * Every benchmark in one run (npm run bench): the binary is built once when src/ changed, then each script runs
 * in its own process, one after another, and prints its table; the figures with an aim are gathered into one
 * table of aims, and everything goes into bench/RESULTS.md with the date, the machine and the Bun version.
 *   npm run bench               full runs (under 3 minutes on 2 cores)
 *   npm run bench -- --quick    shorter runs
 */
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { basename, join } from 'node:path'
import { binaryNote, ensureBinary, ensureReferences, machine, printTable, ROOT, tempDir, type Row } from './lib'
import { ensureWrk } from './wrk'

const started = performance.now()
const loadAtStart = loadavg()[0]!
const scripts = ['foundation', 'lifecycle', 'agent', 'messages', 'cron', 'scaling', 'ui']
const passThrough = process.argv.slice(2)
ensureWrk()
ensureReferences()
const summary = join(tempDir('summary'), 'aims.jsonl')
writeFileSync(summary, '')
// One binary for the whole run, even while src/ changes and others rebuild dist/: a private copy of it.
const built = ensureBinary()
const binary = join(tempDir('bin'), basename(built))
copyFileSync(built, binary)
chmodSync(binary, 0o755)
const env = { ...process.env, XOPCBOT_BENCH_BINARY: binary, XOPCBOT_BENCH_SUMMARY: summary }

const sections: string[] = []
let failures = 0
for (const name of scripts) {
  console.error(`── bench/${name}.ts`)
  const run = Bun.spawnSync([process.execPath, join(ROOT, 'bench', `${name}.ts`), ...passThrough], { cwd: ROOT, env, stdout: 'pipe', stderr: 'pipe' })
  const output = run.stdout.toString().trim()
  const errors = run.stderr.toString().trim()
  if (errors) console.error(errors)
  console.log(`${output}\n`)
  if (run.exitCode === 0) sections.push(output)
  else {
    failures++
    sections.push(`bench/${name}.ts failed (exit ${run.exitCode})\n${output}\n${errors.split('\n').slice(-15).join('\n')}`.trim())
  }
}

const aims = readFileSync(summary, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as { row: Row; met: boolean })
const aimRows = aims.map(({ row: [name, value, note], met }): Row => [name, value, `${met ? '✓' : '✗'} ${note}`])
const seconds = (performance.now() - started) / 1000
if (aimRows.length) printTable(`xopcbot aims (${aims.filter((a) => a.met).length} of ${aims.length} met)`, aimRows)
console.error(`the whole run took ${seconds.toFixed(0)} s`)

const busy = loadAtStart > cpus().length / 2 ? `The machine was busy when the run started (load average ${loadAtStart.toFixed(1)} on ${cpus().length} cores): the figures are noisier than usual.` : ''
if (busy) console.error(`⚠️  ${busy}`)
const revision = Bun.spawnSync(['git', 'describe', '--always', '--dirty'], { cwd: ROOT }).stdout.toString().trim()
const aimTable = aimRows.length
  ? `| figure | value | reference, ratio, aim |\n|---|---|---|\n${aimRows.map((r) => `| ${r.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`).join('\n')}\n\n`
  : ''
writeFileSync(
  join(ROOT, 'bench', 'RESULTS.md'),
  `# Benchmark results

Measured with \`npm run bench${passThrough.length ? ` -- ${passThrough.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)}, on ${machine()}
(load average ${loadAtStart.toFixed(1)} at the start); source ${revision || 'unknown'}, binary ${binaryNote}.
The whole run took ${seconds.toFixed(0)} s. This is a shared machine: figures move by ±20 % between runs, so every reference is
measured in the same run, side by side, and the ratios are what to compare.${busy ? `\n\n⚠️ ${busy}` : ''}

## Aims

${aimTable}## All figures

${sections.map((s) => '```\n' + s + '\n```').join('\n\n')}
`,
)
console.error('wrote bench/RESULTS.md')
process.exit(failures ? 1 : 0)
