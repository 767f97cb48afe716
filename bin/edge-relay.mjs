#!/usr/bin/env node
// The `edge-relay` command (package.json "bin"). The source is TypeScript: register tsx's loader in this process
// (no child process, so Ctrl-C and exit codes behave as usual), then run the CLI.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
