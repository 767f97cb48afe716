import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { startEmbeddedPostgres } from '../../scripts/embedded.ts'

/**
 * vitest globalSetup: integration tests use DATABASE_URL when set, else one embedded PostgreSQL for the run.
 * Each test file then creates its own database (see ./db.ts), so files run in parallel without sharing state.
 */
export default async function setup(project: TestProject) {
  if (process.env.DATABASE_URL) {
    project.provide('databaseUrl', process.env.DATABASE_URL)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'edge-relay-pg-'))
  const pg = await startEmbeddedPostgres({ dir, port: 0, ephemeral: true })
  project.provide('databaseUrl', pg.url)
  return async () => {
    await pg.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
  }
}
