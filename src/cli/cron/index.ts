import { defineCommand } from 'citty'

export default defineCommand({
  meta: { name: 'cron', description: 'Manage the cron jobs of the running gateway' },
  subCommands: {
    list: () => import('./list').then((m) => m.default),
    add: () => import('./add').then((m) => m.default),
    rm: () => import('./rm').then((m) => m.default),
    toggle: () => import('./toggle').then((m) => m.default),
    run: () => import('./run').then((m) => m.default),
  },
})
