import postgres, { type Sql } from 'postgres'
import { CHANNEL } from '../shared/protocol.ts'
import { TENANT_PATTERN } from '../shared/protocol.ts'
import type { Log } from '../shared/log.ts'

/** application_name of the LISTEN session: how operators, tests and a new leader recognise it. */
export const LISTEN_APPLICATION = 'edge-relay-listen'

/**
 * Ends any LISTEN session a previous leader left behind in this database (a killed process's backend can outlive
 * it by a moment), waiting up to 5 s for each to exit, so that a new leader never listens alongside an old one.
 */
export const fenceListeners = async (sql: Sql): Promise<number> => {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity
    where datname = current_database() and application_name = ${LISTEN_APPLICATION} and pid <> pg_backend_pid()`
  for (const { pid } of rows) await sql`select pg_terminate_backend(${pid}, 5000)`
  return rows.length
}

/** A NOTIFY payload no tenant can have: the relay's own liveness ping through the LISTEN connection. */
const PING = ''

export interface ListenerOptions {
  url: string
  /** A tenant's head may have moved. */
  onNudge: (tenant: string) => void
  /** LISTEN is (re)established: anything may have been missed, so catch up. */
  onListen: () => void
  /** How often the watchdog pings itself through NOTIFY; a listener silent for two periods is rebuilt. */
  pingMs: number
  log: Log
}

/**
 * The one LISTEN connection. postgres.js re-LISTENs after a dropped connection and calls `onlisten` again, but if
 * the re-LISTEN fails (Postgres still down) it gives up silently. A ping through NOTIFY every `pingMs` proves the
 * path end to end; when pings stop arriving, the watchdog builds a fresh listener.
 */
export const startListener = (options: ListenerOptions) => {
  const { url, log } = options
  let listenSql: Sql | undefined
  let lastPing = Date.now()
  let listening = false
  let closed = false
  let generation = 0

  const connect = async () => {
    const mine = ++generation
    const old = listenSql
    listenSql = undefined
    // End the old session before opening the new one: there is never a second LISTEN, even for a moment.
    if (old) await old.end({ timeout: 0 }).catch(() => {})
    if (closed || mine !== generation) return
    // A short reconnect backoff: postgres.js's default grows to ~20 s, which is latency for every tenant.
    listenSql = postgres(url, {
      max: 1,
      onnotice: () => {},
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
      max_lifetime: null, // recycling it would only cost a reconnect and a catch-up
      connection: { application_name: LISTEN_APPLICATION },
    })
    try {
      await listenSql.listen(
        CHANNEL,
        (payload) => {
          if (payload === PING) lastPing = Date.now()
          else if (TENANT_PATTERN.test(payload)) options.onNudge(payload)
        },
        () => {
          if (mine !== generation) return
          listening = true
          lastPing = Date.now()
          log('info', 'listening', { channel: CHANNEL })
          options.onListen()
        },
      )
    } catch (err) {
      listening = false
      log('warn', 'LISTEN failed; will retry', { err: String(err) })
    }
  }

  /** Called by the owner's timer with a pool connection: sends a ping and rebuilds a silent listener. */
  const watchdog = async (pool: Sql) => {
    if (closed) return
    if (Date.now() - lastPing > options.pingMs * 2.5) {
      listening = false
      log('warn', 'LISTEN connection silent; reconnecting', { silentMs: Date.now() - lastPing })
      lastPing = Date.now()
      await connect()
    }
    await pool`select pg_notify(${CHANNEL}, ${PING})`
  }

  const ready = connect()

  return {
    ready,
    watchdog,
    get listening() {
      return listening && !closed
    },
    async close() {
      closed = true
      listening = false
      await listenSql?.end({ timeout: 1 }).catch(() => {})
    },
  }
}

export type Listener = ReturnType<typeof startListener>
