import { defineCommand } from 'citty'

export default defineCommand({
  meta: { name: 'mcp', description: 'The MCP servers whose tools the assistant uses' },
  subCommands: {
    list: () => import('./list').then((m) => m.default),
    call: () => import('./call').then((m) => m.default),
  },
})
