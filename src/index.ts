#!/usr/bin/env bun
import { main } from './cli/main'

process.on('unhandledRejection', (reason) => {
  console.error('unhandled rejection:', reason)
})

const code = await main(process.argv.slice(2))
process.exit(code)
