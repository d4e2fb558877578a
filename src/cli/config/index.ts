import { defineCommand } from 'citty'

export default defineCommand({
  meta: { name: 'config', description: 'Read, change and check the config file (dotted key paths such as agent.model)' },
  subCommands: {
    get: () => import('./get').then((m) => m.default),
    set: () => import('./set').then((m) => m.default),
    unset: () => import('./unset').then((m) => m.default),
    validate: () => import('./validate').then((m) => m.default),
    path: () => import('./path').then((m) => m.default),
    schema: () => import('./schema').then((m) => m.default),
  },
})
