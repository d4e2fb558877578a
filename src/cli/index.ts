import { defineCommand } from 'citty'
import { VERSION } from '../version'

/** The command tree: each command is a file (or a folder with an index.ts listing its sub-commands), loaded lazily. */
export const root = defineCommand({
  meta: { name: 'xopcbot', version: VERSION, description: 'Personal AI assistant gateway' },
  subCommands: {
    gateway: () => import('./gateway').then((m) => m.default),
    cron: () => import('./cron').then((m) => m.default),
    pairing: () => import('./pairing').then((m) => m.default),
    usage: () => import('./usage').then((m) => m.default),
    mcp: () => import('./mcp').then((m) => m.default),
    config: () => import('./config').then((m) => m.default),
    doctor: () => import('./doctor').then((m) => m.default),
    backup: () => import('./backup').then((m) => m.default),
    restore: () => import('./restore').then((m) => m.default),
    update: () => import('./update').then((m) => m.default),
  },
})
