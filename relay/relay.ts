import postgres from 'postgres'
import type { Log } from '../shared/log.ts'
import type { PublishBody, PublishReply } from '../shared/schema.ts'
import type { RelayConfig } from './config.ts'
import { Deliverer } from './deliver.ts'
import { describeFailure, postBatch, postHello } from './edge-client.ts'
import { startElection, type Term } from './leader.ts'
import { fenceListeners, startListener, type Listener } from './listener.ts'
import { attachSources, observeRead, relayMetrics } from './metrics.ts'
import { outbox as makeOutbox } from './outbox.ts'
import { startPoller } from './poller.ts'
import { RETENTION_EVERY_CHECKS, startRetention } from './retention.ts'

export interface RelayOptions {
  config: RelayConfig
  log: Log
  /** A Node edge in this process (see LocalEdge), delivered to besides the edges in EDGE_URL. */
  local?: LocalEdge
}

/** An edge whose rooms live in the relay's own process (`npm run serve`): batches reach them by a function call. */
export interface LocalEdge {
  publish(body: PublishBody): Promise<PublishReply>
  /** Names its set of rooms, as POST /internal/hello does (a new one when they start empty). */
  readonly instance: string
}

/**
 * The relay: a small query pool and, while it holds the leader lock (see leader.ts), one LISTEN connection (or a
 * poller) and a Deliverer per edge. Every (re)LISTEN, every sweep and every new term catches up all tenants whose
 * head is past an edge's cursor, so a missed nudge or a failover costs latency, never data. A relay that does not
 * hold the lock is a hot standby: no LISTEN, no deliveries.
 */
export const startRelay = async ({ config, log, local }: RelayOptions) => {
  const sql = postgres(config.DATABASE_URL, {
    max: 4,
    onnotice: () => {},
    // postgres.js's default reconnect backoff grows to ~20 s: after a database restart that would be 20 s of
    // nothing delivered. Retry within a second instead.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    connection: { application_name: 'edge-relay' },
  })
  const [schema] = await sql<{ ok: boolean }[]>`select to_regclass('relay.events') is not null as ok`
  if (!schema?.ok) {
    await sql.end()
    throw new Error('relay schema is missing: run `npm run migrate` against DATABASE_URL first')
  }
  const metrics = relayMetrics()
  const plainOutbox = makeOutbox(sql)
  const after: typeof plainOutbox.after = async (...args) => {
    const read = await plainOutbox.after(...args)
    observeRead(metrics, args[0], read.events)
    return read
  }
  const outbox: typeof plainOutbox = { ...plainOutbox, after }
  // The edges delivered to: each URL of EDGE_URL over HTTP, and the edge in this process, if any.
  const targets: Target[] = [
    ...config.EDGE_URL.map((edge) => ({
      edge,
      send: (body: PublishBody, signal: AbortSignal) => postBatch(edge, config.RELAY_SECRET, body, signal),
      hello: (signal: AbortSignal) => postHello(edge, config.RELAY_SECRET, signal).then((r) => r.instance),
    })),
    ...(local
      ? [{ edge: config.RELAY_LOCAL_EDGE, send: (body: PublishBody) => local.publish(body), hello: async () => local.instance }]
      : []),
  ]
  const timedPost = async (target: (typeof targets)[number], body: PublishBody, signal: AbortSignal) => {
    metrics.batch.observe(body.events.length)
    const end = metrics.postSeconds.startTimer({ edge: target.edge })
    try {
      const reply = await target.send(body, signal)
      end({ outcome: 'ok' })
      return reply
    } catch (err) {
      end({ outcome: 'error' })
      throw err
    }
  }
  /** The rooms instance each edge answered, once its rooms were checked (see checkEdge). */
  const instances = new Map<string, string>()
  let listens = 0
  const safely = (what: string, p: Promise<unknown>) => p.catch((err) => log('warn', `${what} failed`, { err: String(err) }))

  /** One leadership term: deliverers, the LISTEN (or the poller), the sweep and retention. */
  const lead = async (): Promise<Term> => {
    const deliverers = targets.map(
      (target) =>
        new Deliverer({
          edge: target.edge,
          outbox,
          post: (body, signal) => timedPost(target, body, signal),
          onDelivered: (tenant, events) => metrics.delivered.inc({ tenant, edge: target.edge }, events),
          onUndeliverable: (tenant, _seq, reason) => metrics.undeliverable.inc({ tenant, edge: target.edge, reason }),
          log,
        }),
    )
    /**
     * Edges that answered POST /internal/hello this term: only they are delivered to. An edge older than this relay
     * has no such route and would take event data for a value, not text: it gets nothing until it is upgraded.
     */
    const speaking = new Set<Deliverer>()
    const catchUpOne = async (d: Deliverer) => {
      for (const { tenant } of await outbox.behind(d.edge)) d.nudge(tenant)
    }
    /** Something may be new for `tenant` (a NOTIFY, or a changed head in poll mode). */
    const nudge = (tenant: string) => {
      for (const d of deliverers) if (speaking.has(d)) d.nudge(tenant)
    }
    const catchUp = async () => {
      for (const d of deliverers) if (speaking.has(d)) await catchUpOne(d)
    }
    // Rooms in memory come back empty when their edge restarts, while our cursors say they have everything: ask
    // each edge which rooms it serves, and on a new instance check every tenant's room (see Deliverer.recheck).
    const termAbort = new AbortController()
    const checking = new Set<string>()
    const complaints = new Map<string, { msg: string; at: number }>()
    const checkEdge = async (d: Deliverer, target: Target) => {
      if (checking.has(d.edge)) return
      checking.add(d.edge)
      try {
        let instance: string
        try {
          instance = await target.hello(termAbort.signal)
        } catch (err) {
          // Said when it changes, and once a minute while it lasts (the check repeats every few seconds).
          const msg = `${describeFailure(err)} (edge check)`
          const last = complaints.get(d.edge)
          if (last?.msg !== msg || Date.now() - last.at > 60_000) {
            complaints.set(d.edge, { msg, at: Date.now() })
            log('warn', msg, { edge: d.edge, err: String(err) })
          }
          return
        }
        complaints.delete(d.edge)
        if (!speaking.has(d)) {
          speaking.add(d)
          void safely('catch-up', catchUpOne(d))
        }
        if (instance === (instances.get(d.edge) ?? (await outbox.edgeInstance(d.edge)))) return instances.set(d.edge, instance)
        log('info', "edge serves new rooms; checking each tenant's room against the cursor", { edge: d.edge, instance })
        await d.recheck(await outbox.deliveredTenants(d.edge))
        if (termAbort.signal.aborted) return
        await outbox.saveEdgeInstance(d.edge, instance)
        instances.set(d.edge, instance)
      } finally {
        checking.delete(d.edge)
      }
    }
    const checkEdges = () => deliverers.forEach((d, i) => void safely('edge check', checkEdge(d, targets[i]!)))
    checkEdges()
    const edgeChecks = setInterval(checkEdges, config.RELAY_SWEEP_MS)

    let listener: Listener | undefined
    let poller: ReturnType<typeof startPoller> | undefined
    if (config.RELAY_MODE === 'poll') {
      // No LISTEN at all: the heads stamped since the last polls (relay/poller.ts); writers never take NOTIFY's lock.
      poller = startPoller({ outbox, onChange: nudge, log })
    } else {
      const fenced = await safely('fencing old listeners', fenceListeners(sql))
      if (fenced) log('warn', 'ended LISTEN sessions left by a previous leader', { sessions: fenced })
      listener = startListener({
        url: config.DATABASE_URL,
        pingMs: config.RELAY_SWEEP_MS,
        log,
        onNudge: nudge,
        onListen: () => {
          if (listens++ > 0) metrics.reconnects.inc()
          void safely('catch-up', catchUp())
        },
      })
      await listener.ready
    }
    // The safety net under NOTIFY, and under polling (a late committer that stayed open longer than the poller's
    // window, a head the migration left unstamped).
    const sweep = setInterval(() => {
      void safely('sweep', catchUp())
      if (listener) void safely('listener watchdog', listener.watchdog(sql))
    }, config.RELAY_SWEEP_MS)
    const retention = startRetention({
      sql,
      edges: targets.map((t) => t.edge),
      ageS: config.RELAY_RETENTION_AGE_S,
      count: config.RELAY_RETENTION_COUNT,
      intervalMs: config.RELAY_SWEEP_MS * RETENTION_EVERY_CHECKS,
      log,
    })
    current = { deliverers, listener, retention }
    metrics.leader.set(1)
    return {
      async stop(immediate) {
        clearInterval(sweep)
        clearInterval(edgeChecks)
        termAbort.abort()
        current = undefined
        metrics.leader.set(0)
        // Lock lost: stop listening and posting now (abandon retries); the next leader resends from the cursors.
        await Promise.all([listener?.close(), poller?.stop(), retention.stop(), ...deliverers.map((d) => d.stop(immediate ? 0 : 5_000))])
      },
    }
  }
  let current: { deliverers: Deliverer[]; listener?: Listener; retention: ReturnType<typeof startRetention> } | undefined

  // Sampled for /healthz: NOTIFY's queue is shared by the whole cluster; near 1, NOTIFY starts failing commits.
  let notificationQueueUsage: number | undefined
  /** Per edge: age of the oldest committed event it has not confirmed, as last sampled (see outbox.lagSeconds). */
  const lags = new Map<string, number>()
  const sample = async () => {
    const [row] = await sql<{ usage: number }[]>`select pg_notification_queue_usage() as usage`
    notificationQueueUsage = row?.usage
    // The leader's figure: a standby delivers nothing, and the same query on every standby would only add load.
    if (!current) return lags.clear()
    for (const t of targets) lags.set(t.edge, await plainOutbox.lagSeconds(t.edge))
  }
  await safely('notification queue sample', sample())
  const sampler = setInterval(() => void safely('notification queue sample', sample()), config.RELAY_SWEEP_MS)

  const edgeStates = () =>
    (current?.deliverers ?? []).map((d) => ({ url: d.edge, failures: d.failures, busy: d.busy, lagSeconds: lags.get(d.edge) ?? 0 }))
  attachSources(metrics, {
    listening: () => current?.listener?.listening ?? false,
    edges: edgeStates,
    backlog: async (edge) => (await plainOutbox.behind(edge)).reduce((n, t) => n + t.head - t.delivered, 0),
    queueUsage: () => notificationQueueUsage,
    lag: () => lags,
  })

  const election = startElection({ url: config.DATABASE_URL, log, lead })
  await election.ready
  // A standby is silent by design, which left a second `npm start` or `serve` against a shared DATABASE_URL looking
  // healthy while its own edge got nothing: say it once, at start, where the person who started it looks. It does
  // not deliver to its own edge meanwhile: that would be a second reader outside the lock (its local edge's cursors
  // go by RELAY_LOCAL_EDGE, `local` in both processes, so the two would move the same cursor rows), which the one
  // leader per database rule exists to prevent. It delivers once it leads (when the leader stops).
  if (election.role === 'standby') log('warn', STANDBY_NOTE)

  let stopped: Promise<void> | undefined
  return {
    /** Prometheus metrics; `metrics.leader` is 1 while this relay leads, 0 while it waits as a standby. */
    metrics,
    health: () => {
      const role = election.role
      const listening = current?.listener?.listening ?? false
      return {
        // A standby is healthy: it is ready to take over. A leader is healthy when it can hear nudges (or polls).
        ok: role === 'standby' || (current !== undefined && (config.RELAY_MODE === 'poll' || listening)),
        role,
        ...(role === 'standby' ? { note: STANDBY_NOTE } : {}),
        mode: config.RELAY_MODE,
        roleSinceMs: Date.now() - election.since,
        listening,
        notificationQueueUsage,
        retention: current?.retention.state,
        edges: edgeStates(),
        // Edges holding back an event for longer than LAGGING_S: unreachable, refusing, or stalled.
        lagging: [...lags].filter(([, s]) => s > LAGGING_S).map(([edge, s]) => ({ edge, lagSeconds: Math.round(s * 10) / 10 })),
      }
    },
    /** Finishes the batches in flight, then closes every connection (a standby takes over). */
    stop(): Promise<void> {
      stopped ??= (async () => {
        clearInterval(sampler)
        await election.close()
        await sql.end({ timeout: 5 })
      })()
      return stopped
    },
  }
}

export type Relay = Awaited<ReturnType<typeof startRelay>>

/** What a standby says at start and in /healthz. */
export const STANDBY_NOTE =
  'another relay leads this database: this one is a hot standby and delivers nothing (not even to an edge in its own process) until it leads, within about a second of the leader stopping'

/** An edge whose oldest unconfirmed event is older than this is listed as lagging in /healthz. */
const LAGGING_S = 10

/** An edge the relay delivers to: over signed HTTP, or in this process. */
interface Target {
  edge: string
  send: (body: PublishBody, signal: AbortSignal) => Promise<PublishReply>
  /** Which set of rooms it serves (see HelloReply). */
  hello: (signal: AbortSignal) => Promise<string>
}
