import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'

/**
 * vitest globalSetup for the e2e tests: `npm pack` once per run (its prepack builds dist/ afresh, so two test files
 * packing at once would delete each other's build), providing the tarball's path as `tarball`.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-relay-pack-'))
  const root = resolve(import.meta.dirname, '../..')
  const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' }
  const { stdout } = await promisify(execFile)('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: root,
    env,
    maxBuffer: 16 << 20,
  })
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }]
  project.provide('tarball', join(dir, filename))
  return () => rmSync(dir, { recursive: true, force: true })
}

declare module 'vitest' {
  export interface ProvidedContext {
    tarball: string
  }
}
