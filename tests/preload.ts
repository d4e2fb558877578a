import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// Tests never touch the real ~/.xopcbot or a real provider: HOME points at a fresh directory and every
// variable that configures the gateway or a provider is cleared.
process.env.HOME = mkdtempSync(join(tmpdir(), 'xopcbot-test-home-'))
for (const name of Object.keys(process.env)) {
  if (name.startsWith('XOPCBOT_') || /_API_KEY$/.test(name) || name === 'TELEGRAM_BOT_TOKEN') delete process.env[name]
}
process.env.NO_COLOR = '1'
