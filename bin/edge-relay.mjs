#!/usr/bin/env node
// The `edge-relay` command (package.json "bin"). From the package: the built JavaScript in dist/. In a checkout of
// the repository (where the TypeScript sources sit next to this file): the sources, through tsx's loader in this
// process (no child process, so Ctrl-C and exit codes behave as usual).
import { existsSync } from 'node:fs'

const source = new URL('../cli/main.ts', import.meta.url)
let main
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api')
  register()
  ;({ main } = await import(source.href))
} else {
  ;({ main } = await import('../dist/cli/main.js'))
}
const code = await main(process.argv.slice(2))
if (code !== undefined) process.exitCode = code
