import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, closeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startEmbeddedPostgres } from '../../../scripts/embedded.ts'
import { freePort } from '../../../scripts/free-port.ts'
import { RELAY_SECRET } from '../../support/tokens.ts'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
export const RESULTS = `${ROOT}test-results/`

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const until = async (what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 30_000, stepMs = 50) => {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await Promise.resolve(pred()).catch(() => false)) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(stepMs)
  }
}

/**
 * Our own PostgreSQL for the chaos file, so it can be restarted without disturbing other test files. fsync stays
 * on and synchronous_commit on: an immediate shutdown must not lose a commit that a client was told about.
 */
export const startChaosPostgres = async (dir: string) => {
  const pg = await startEmbeddedPostgres({ dir, port: 0 })
  const proc = () => (pg.pg as unknown as { process?: ChildProcess }).process
  return {
    url: pg.url,
    port: pg.port,
    /** `pg_ctl stop -m immediate` equivalent: SIGQUIT to the postmaster (no checkpoint, crash recovery on start). */
    async immediateStop() {
      const p = proc()
      if (!p || p.exitCode !== null) return
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve())
        p.kill('SIGQUIT')
      })
    },
    async start() {
      await pg.pg.start()
    },
    stop: () => pg.stop(),
  }
}

export interface RelayProcess {
  pid: number
  port: number
  health(): Promise<{ role?: string; ok?: boolean; listening?: boolean } & Record<string, unknown>>
  /** kill -9: no cleanup of any kind. */
  kill9(): Promise<void>
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>
  exited: Promise<void>
  /** True once we killed or stopped it on purpose (an exit otherwise is a crash). */
  readonly intentional: boolean
}

let relayCount = 0

/**
 * A relay as its own process (`node --import tsx relay/main.ts`, `npm run relay`), so that it can be killed by PID;
 * `entry: 'cli/serve.ts'` for `npm run serve` (relay and Node edge in one).
 */
export const spawnRelay = async (env: Record<string, string>, entry = 'relay/main.ts'): Promise<RelayProcess> => {
  const port = await freePort()
  mkdirSync(RESULTS, { recursive: true })
  const log = `${RESULTS}chaos-relay-${++relayCount}.log`
  const logFd = openSync(log, 'w')
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { ...process.env, RELAY_SECRET, RELAY_HOST: '127.0.0.1', RELAY_PORT: String(port), ...env },
    stdio: ['ignore', logFd, logFd],
  })
  closeSync(logFd)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const health = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })
    return (await res.json()) as Awaited<ReturnType<RelayProcess['health']>>
  }
  let dead = false
  void exited.then(() => (dead = true))
  await until(
    `relay ${child.pid} to serve /healthz`,
    async () => {
      if (dead) throw new Error(`relay exited at start; see ${log}`)
      return (await health()).role !== undefined
    },
    30_000,
    100,
  )
  let intentional = false
  return {
    pid: child.pid!,
    port,
    health,
    exited,
    get intentional() {
      return intentional
    },
    async kill9() {
      intentional = true
      process.kill(child.pid!, 'SIGKILL')
      await exited
    },
    async stop() {
      intentional = true
      if (dead) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => !dead && child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    },
  }
}
