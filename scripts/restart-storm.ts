/**
 * A room restarted under its subscribers, in local workerd: `clients` EventSource-like clients on one tenant's room
 * (the Worker edge with Durable Object rooms, from wrangler.toml, run by Miniflare), events flowing, then the room's
 * Durable Object reset as a deploy or an eviction resets it (memory gone, sockets closed, SQLite kept). Every client
 * then waits its stream's `retry:` and reconnects with Last-Event-ID, as a browser's EventSource does. Returns what
 * each client received and when; test/integration/restart-storm.test.ts asserts on it, the bench reports it
 * (bench/workloads/restart-storm.ts). `npx tsx scripts/restart-storm.ts [clients]` prints the summary.
 */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { SignJWT } from 'jose'
import { Miniflare } from 'miniflare'
import { unstable_getMiniflareWorkerOptions } from 'wrangler'
import { postBatch } from '../relay/edge-client.ts'
import { isMain } from '../shared/node/process.ts'
import { createSseParser } from '../shared/sse-parse.ts'
import { bundleWorker } from './worker-bundle.ts'

const root = resolve(import.meta.dirname, '..')
const now = () => performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The Worker edge in local workerd, plus the harness's `POST /__restart/:tenant` (test/workers/restartable-worker.ts). */
export const startRestartableWorker = async () => {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(root, 'wrangler.toml'))
  const { modulesRules: _, ...options } = workerOptions
  const bundle = await bundleWorker(resolve(root, 'test/workers/restartable-worker.ts'))
  const secrets = { EDGE_JWT_SECRET: randomBytes(24).toString('hex'), RELAY_SECRET: randomBytes(24).toString('hex') }
  const mf = new Miniflare({
    ...options,
    modules: [{ type: 'ESModule', path: 'worker.js', contents: bundle }],
    bindings: { ...options.bindings, ...secrets },
    host: '127.0.0.1',
    port: 0,
  })
  const url = (await mf.ready).origin
  const key = new TextEncoder().encode(secrets.EDGE_JWT_SECRET)
  return {
    url,
    token: (tenant: string) => new SignJWT({ tenant }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key),
    /** A relay batch, posted as the relay posts it (signed, a fresh nonce); the reply's head (a refused or failed post throws). */
    async publish(tenant: string, events: { seq: number; topic: string; data: string }[]) {
      const body = { tenant, events: events.map((e) => ({ ...e, ts: Date.now() })) }
      return (await postBatch(url, secrets.RELAY_SECRET, body)).head
    },
    async subscribers(tenant: string) {
      const res = await fetch(`${url}/v1/tenants/${tenant}/presence`, { headers: { authorization: `Bearer ${await this.token(tenant)}` } })
      return ((await res.json()) as { subscribers: number }).subscribers
    },
    restart: (tenant: string) => fetch(`${url}/__restart/${tenant}`, { method: 'POST' }).then((r) => void r.body?.cancel()),
    stop: () => mf.dispose(),
  }
}

/**
 * One client that behaves as a browser's EventSource: sends Last-Event-ID on reconnect, adopts each `retry:`, waits
 * that long after a stream ends or a connection fails, and gives up for good on any answer but 200 (as EventSource
 * does: an edge that refuses during a storm loses that browser until the page reloads).
 */
export class EventSourceLike {
  /** Seqs of the events received, in order, and when each arrived (performance.now()). */
  readonly seqs: number[] = []
  readonly at: number[] = []
  /** When each stream opened (a 200) and ended. */
  readonly opens: number[] = []
  readonly ends: number[] = []
  /** Every `retry:` value received. */
  readonly retries: number[] = []
  /** Why it gave up, if it did. */
  failed: string | undefined
  private retryMs = 3000
  private lastEventId: string | undefined
  private readonly abort = new AbortController()

  constructor(
    private readonly url: string,
    private readonly token: string,
  ) {}

  /** Resolves once the first stream is open (or the client gave up). */
  start(): Promise<void> {
    return new Promise((opened) => void this.run(opened))
  }

  close(): void {
    this.abort.abort()
  }

  private async run(opened: () => void) {
    while (!this.abort.signal.aborted) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${this.token}` }
        if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId
        const res = await fetch(this.url, { headers, signal: this.abort.signal })
        if (res.status !== 200 || !res.body) {
          this.failed = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`
          return opened()
        }
        this.opens.push(now())
        opened()
        const feed = createSseParser(
          (m) => {
            if (m.id === undefined) return
            this.lastEventId = m.id
            this.seqs.push(Number(m.id))
            this.at.push(now())
          },
          () => {},
          (ms) => this.retries.push((this.retryMs = ms)),
        )
        const decoder = new TextDecoder()
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) feed(decoder.decode(chunk, { stream: true }))
      } catch {
        // a network error: EventSource reconnects after its retry time, as after a stream's end
      }
      if (this.abort.signal.aborted) return
      this.ends.push(now())
      await sleep(this.retryMs)
    }
  }
}

export interface StormOptions {
  clients: number
  /** Events per second, published before, during and after the restart. */
  rate?: number
  /** How long events flow before the restart, ms. */
  beforeMs?: number
  /** Give up waiting for every client to be live again after this long, ms. */
  timeoutMs?: number
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN
}
const ms = (x: number) => Math.round(x)

/**
 * Runs the storm and returns every client with the summary. A client is live again once a stream it opened after the
 * restart has brought it every event acknowledged before that stream opened (what the room's SQLite replays).
 */
export const restartStorm = async ({ clients: n, rate = 10, beforeMs = 1000, timeoutMs = 60_000 }: StormOptions) => {
  const worker = await startRestartableWorker()
  const tenant = 'storm'
  const clients: EventSourceLike[] = []
  let publishing = true
  try {
    const token = await worker.token(tenant)
    for (let i = 0; i < n; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, () => {
          const c = new EventSourceLike(`${worker.url}/v1/tenants/${tenant}/events`, token)
          clients.push(c)
          return c.start()
        }),
      )
    while ((await worker.subscribers(tenant)) < n) await sleep(20)

    // The relay's part: contiguous seqs, one batch in flight, a failed post retried (publish is idempotent by seq).
    const ackAt: number[] = [] // by seq
    let head = 0
    const published = (async () => {
      while (publishing) {
        const seq = head + 1
        for (;;) {
          try {
            await worker.publish(tenant, [{ seq, topic: 'storm', data: JSON.stringify({ seq }) }])
            break
          } catch {
            if (!publishing) return // the run is over (or failed): stop retrying
            await sleep(20) // the room is restarting: the relay retries
          }
        }
        ackAt[seq] = now()
        head = seq
        await sleep(1000 / rate)
      }
    })()
    await sleep(beforeMs)

    const restartAt = now()
    await worker.restart(tenant)
    /** When client c was live again after the restart (undefined: not yet). */
    const liveAt = (c: EventSourceLike) => {
      const open = c.opens.find((t) => t > restartAt)
      if (open === undefined) return undefined
      let owed = 0 // the last event acknowledged before that stream opened
      while (ackAt[owed + 1] !== undefined && ackAt[owed + 1]! <= open) owed++
      for (let k = 0; k < c.seqs.length; k++) if (c.seqs[k]! >= owed) return Math.max(open, c.at[k]!)
      return owed === 0 ? open : undefined
    }
    const deadline = now() + timeoutMs
    while (clients.some((c) => c.failed === undefined && liveAt(c) === undefined) && now() < deadline) await sleep(20)
    await sleep(300) // a little traffic on the new streams, then the last event
    publishing = false
    await published
    while (clients.some((c) => c.failed === undefined && c.seqs.at(-1) !== head) && now() < deadline) await sleep(20)

    const lives = clients
      .map(liveAt)
      .filter((t): t is number => t !== undefined)
      .map((t) => t - restartAt)
    // The storm's own share: how long after the end of its retry wait each client was live.
    const overRetry = clients.flatMap((c) => {
      const end = c.ends.find((t) => t > restartAt)
      const live = liveAt(c)
      return end === undefined || live === undefined ? [] : [live - end - c.retries.at(-1)!]
    })
    const firstOpens = clients.map((c) => c.opens.find((t) => t > restartAt)).filter((t): t is number => t !== undefined)
    // Events each client could only get from the room's stored history: acknowledged before its new stream opened,
    // received on that stream.
    const replayed = clients.map((c) => {
      const open = c.opens.find((t) => t > restartAt) ?? Infinity
      return c.seqs.filter((s, k) => c.at[k]! >= open && ackAt[s]! < open).length
    })
    const summary = {
      clients: n,
      events: head,
      live: lives.length,
      failed: clients.filter((c) => c.failed !== undefined).length,
      allLiveMs: lives.length === n ? ms(Math.max(...lives)) : null,
      liveMs: { p50: ms(quantile(lives, 0.5)), p99: ms(quantile(lives, 0.99)) },
      reconnectedMs: { first: ms(Math.min(...firstOpens) - restartAt), last: ms(Math.max(...firstOpens) - restartAt) },
      overRetryMs: { p50: ms(quantile(overRetry, 0.5)), p99: ms(quantile(overRetry, 0.99)), max: ms(Math.max(...overRetry)) },
      reconnects: clients.reduce((a, c) => a + c.opens.filter((t) => t > restartAt).length, 0),
      replayed: { min: Math.min(...replayed), total: replayed.reduce((a, b) => a + b, 0) },
      retryMs: { min: Math.min(...clients.flatMap((c) => c.retries)), max: Math.max(...clients.flatMap((c) => c.retries)) },
      ...ledger(clients, head),
    }
    return { summary, clients, head }
  } finally {
    publishing = false
    for (const c of clients) c.close()
    await worker.stop()
  }
}

/** Events lost, received twice, or out of order, over all clients: each should have 1..head once, in order. */
export const ledger = (clients: EventSourceLike[], head: number) => {
  let lost = 0
  let duplicated = 0
  let disordered = 0
  for (const c of clients) {
    const seen = new Set(c.seqs)
    duplicated += c.seqs.length - seen.size
    for (let s = 1; s <= head; s++) if (!seen.has(s)) lost++
    for (let i = 1; i < c.seqs.length; i++) if (c.seqs[i]! <= c.seqs[i - 1]!) disordered++
  }
  return { lost, duplicated, disordered }
}

if (isMain(import.meta.url)) {
  const { summary } = await restartStorm({ clients: Number(process.argv[2] ?? 1000) })
  console.log(JSON.stringify(summary, null, 2))
}
