import { defineCommand } from 'citty'

export default defineCommand({
  meta: { name: 'pairing', description: 'Approve or revoke chat senders (dmPolicy "pairing"); works with or without a running gateway' },
  subCommands: {
    list: () => import('./list').then((m) => m.default),
    approve: () => import('./approve').then((m) => m.default),
    revoke: () => import('./revoke').then((m) => m.default),
  },
})
