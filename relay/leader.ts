import postgres, { type Sql } from 'postgres'
import type { Log } from '../shared/log.ts'
import { sleep } from '../shared/backoff.ts'
import { withTimeout } from './timing.ts'

/** The session-level advisory lock whose holder is the leader (advisory locks are per database). */
const LEADER_LOCK = 0x72656c6179_02n.toString()

/** Lets the server notice a vanished leader within ~10 s (and free the lock) even if no FIN ever arrives. */
const KEEPALIVES = { tcp_keepalives_idle: 4, tcp_keepalives_interval: 2, tcp_keepalives_count: 3 }

/** One leadership term: whatever the leader runs (LISTEN, deliveries, sweeps). */
export interface Term {
  /** `immediate`: the lock is lost, stop now (abandon posts in flight); otherwise finish batches in flight. */
  stop(immediate: boolean): Promise<void>
}

/** A standby tries the lock, and the leader re-proves it, this often (one tiny query): a standby leads within about this long. */
const CHECK_MS = 1_000

export interface ElectionOptions {
  url: string
  log: Log
  /** Called once per term after the lock is taken; the returned term is stopped when the lock is lost. */
  lead: () => Promise<Term>
}

export type Role = 'leader' | 'standby'

/**
 * Hot standby by a session-level advisory lock on a dedicated connection. Whoever holds it leads; the others try it
 * every CHECK_MS. Postgres frees the lock the moment its session ends (crash, kill -9, terminated backend, restart).
 * Never two leaders: the leader stops its term as soon as its lock connection closes, and every CHECK_MS proves the
 * session that took the lock is still the one it talks to (same backend pid, answered in time). On a silent network
 * cut, the server drops the dead session (TCP keepalives) only after the old leader's own check has stopped it.
 */
export const startElection = (o: ElectionOptions) => {
  // A lock check unanswered for two intervals counts as a lost session (a silent network cut).
  const timeoutMs = 2 * CHECK_MS
  let role: Role = 'standby'
  let term: Term | undefined
  let lockSql: Sql | undefined
  let lockPid: number | undefined
  let closed = false
  let deposing: Promise<void> | undefined
  let since = Date.now()
  const wake = new AbortController()

  const connect = (): Sql => {
    const sql: Sql = postgres(o.url, {
      max: 1,
      idle_timeout: 0, // never close an idle lock session
      max_lifetime: null, // a recycled connection would silently drop the lock
      fetch_types: false,
      onnotice: () => {},
      backoff: () => 0.2,
      connect_timeout: Math.ceil(timeoutMs / 1000),
      connection: { application_name: 'edge-relay-leader', ...KEEPALIVES } as Record<string, string | number>,
      onclose: () => {
        // Only the session that took the lock matters (an old instance closing late must not depose a new term).
        if (sql === lockSql && role === 'leader') void depose('lock connection closed')
      },
    })
    return sql
  }

  const depose = (reason: string) =>
    (deposing ??= (async () => {
      if (role !== 'leader') return
      o.log('warn', 'leadership lost; stopping at once', { reason })
      role = 'standby'
      since = Date.now()
      lockPid = undefined
      const old = lockSql
      lockSql = undefined
      await Promise.allSettled([term?.stop(true), old?.end({ timeout: 0 })])
      term = undefined
    })().finally(() => (deposing = undefined)))

  const tryLead = async () => {
    lockSql ??= connect()
    const lock = lockSql<{ ok: boolean; pid: number }[]>`select pg_try_advisory_lock(${LEADER_LOCK}::bigint) as ok, pg_backend_pid() as pid`
    const [row] = await withTimeout(lock, timeoutMs)
    if (!row?.ok || closed) return
    role = 'leader'
    since = Date.now()
    lockPid = row.pid
    o.log('info', 'elected leader', { pid: row.pid })
    try {
      const started = await o.lead()
      if (role === 'leader' && !closed) term = started
      else await started.stop(true) // deposed (or closed) while starting
    } catch (err) {
      o.log('error', 'leader failed to start; giving the lock up', { err: String(err) })
      await depose('start failed')
    }
  }

  const check = async () => {
    try {
      const [row] = await withTimeout(lockSql!<{ pid: number }[]>`select pg_backend_pid() as pid`, timeoutMs)
      if (row?.pid !== lockPid) await depose('lock session was replaced')
    } catch (err) {
      await depose(`lock check failed: ${String(err)}`)
    }
  }

  const loop = async () => {
    for (let first = true; !closed; first = false) {
      if (!first) await sleep(CHECK_MS, wake.signal)
      if (closed) break
      await deposing
      if (role === 'leader') await check()
      else
        await tryLead().catch((err) => {
          o.log('debug', 'leader lock not reachable', { err: String(err) })
          const old = lockSql
          lockSql = undefined
          void old?.end({ timeout: 0 }).catch(() => {})
        })
      if (first) firstDone()
    }
  }
  let firstDone = () => {}
  const ready = new Promise<void>((resolve) => (firstDone = resolve))
  const running = loop()

  return {
    /** Resolves after the first attempt to lead (and the term's start, if it led). */
    ready,
    get role(): Role {
      return role
    },
    /** When the current role began (ms since epoch). */
    get since(): number {
      return since
    },
    /** Stops the term gracefully (batches in flight finish), then releases the lock by closing its session. */
    async close(): Promise<void> {
      closed = true
      wake.abort()
      await running
      await deposing
      await term?.stop(false)
      term = undefined
      role = 'standby'
      await lockSql?.end({ timeout: 1 }).catch(() => {})
      lockSql = undefined
    },
  }
}
