/**
 * Every benchmark in one run (npm run bench): each script runs in its own process, one after another, and
 * prints its table; the tables are collected into bench/RESULTS.md with the date and the machine.
 *   npm run bench               full runs
 *   npm run bench -- --quick    shorter runs
 */
import { writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './lib'

const scripts = ['foundation', 'lifecycle', 'agent', 'messages', 'cron']
const passThrough = process.argv.slice(2)
const sections: string[] = []
for (const name of scripts) {
  console.error(`── bench/${name}.ts`)
  const run = Bun.spawnSync([process.execPath, join(ROOT, 'bench', `${name}.ts`), ...passThrough], { cwd: ROOT, stdout: 'pipe', stderr: 'inherit' })
  const output = run.stdout.toString().trim()
  console.log(output)
  sections.push(run.exitCode === 0 ? output : `bench/${name}.ts failed (exit ${run.exitCode})\n${output}`)
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${process.platform}-${process.arch}, Bun ${Bun.version}`
writeFileSync(
  join(ROOT, 'bench', 'RESULTS.md'),
  `# Benchmark results

Measured with \`npm run bench${passThrough.length ? ` -- ${passThrough.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)}, on ${machine}.
This is a shared machine: figures move by ±20 % between runs; ratios are measured side by side in one run.

${sections.map((s) => '```\n' + s + '\n```').join('\n\n')}
`,
)
console.error('wrote bench/RESULTS.md')
