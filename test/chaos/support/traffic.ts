import type { Sql } from 'postgres'
import { createSseParser } from '../../../shared/sse-parse.ts'
import { sleep } from './cluster.ts'

export const TOPICS = ['orders', 'users', 'audit'] as const

const ROLLBACK = new Error('chaos: rollback on purpose')

export interface WriterSpec {
  tenant: string
  /** Bytes of padding in each event's data (0 = small events). */
  pad?: number
  /** Pause between transactions, ms (jittered ±50%). */
  pauseMs?: number
  /** Share of transactions rolled back on purpose. */
  rollbackRate?: number
  /** Publish on this topic only (default: a random one of TOPICS per event). */
  topic?: string
}

/**
 * Writer loops: each commits transactions of 1–5 events on random topics of its tenant, rolls some back on
 * purpose, and rides out a database that is restarting (errors are counted, then it carries on). Ground truth is
 * what relay.events holds afterwards, not what the writers think they committed: a commit whose reply was lost in
 * a restart may or may not have happened.
 */
export const startWriters = (sql: Sql, specs: WriterSpec[]) => {
  const stats = { transactions: 0, rolledBack: 0, errors: 0, lastError: '' }
  let running = true
  const loop = async (w: WriterSpec, id: number) => {
    const sizes = [1, 1, 1, 2, 3, 5]
    while (running) {
      const n = sizes[Math.floor(Math.random() * sizes.length)]!
      const rollback = Math.random() < (w.rollbackRate ?? 0.15)
      try {
        await sql.begin(async (tx) => {
          await tx`
            select relay.publish(${w.tenant}::text, coalesce(${w.topic ?? null}::text, (${TOPICS as unknown as string[]}::text[])[1 + floor(random() * 3)::int]),
                                 jsonb_build_object('w', ${id}::int, 'i', g, 'pad', repeat('x', ${w.pad ?? 0}::int)))
            from generate_series(1, ${n}::int) g`
          if (rollback) throw ROLLBACK
        })
        stats.transactions++
      } catch (err) {
        if (err === ROLLBACK) stats.rolledBack++
        else {
          stats.errors++
          stats.lastError = String(err)
          await sleep(100)
        }
      }
      const pause = w.pauseMs ?? 40
      await sleep(pause / 2 + Math.random() * pause)
    }
  }
  const loops = specs.map((w, i) => loop(w, i))
  return {
    stats,
    async stop() {
      running = false
      await Promise.all(loops)
    },
  }
}

export interface ClientOptions {
  baseUrl: string
  token: string
  tenant: string
  topics?: string[]
  /** Resume point of the first connection (undefined = live only). */
  lastEventId?: number
}

/**
 * An SSE client that behaves like EventSource: it reconnects after any end or error with the last `id:` it saw as
 * `Last-Event-ID`, and records every seq in arrival order (and where `reset`s came), for the ledger.
 */
export class ChaosClient {
  readonly received: number[] = []
  /** Indexes into `received` where an `event: reset` arrived. */
  readonly resets: number[] = []
  readonly from: number
  lastEventId: number | undefined
  maxSeq = 0
  connects = 0
  private abort: AbortController | undefined
  private stopped = false
  private gate: Promise<void> | undefined
  private openGate = () => {}
  private hold: Promise<void> | undefined
  private done: Promise<void> | undefined

  constructor(readonly o: ClientOptions) {
    this.lastEventId = o.lastEventId
    this.from = o.lastEventId ?? 0
  }

  start(): this {
    this.done = this.run()
    return this
  }

  private async run() {
    const params = this.o.topics ? `?topics=${this.o.topics.join(',')}` : ''
    const url = `${this.o.baseUrl}/v1/tenants/${this.o.tenant}/events${params}`
    while (!this.stopped) {
      if (this.hold) await this.hold
      if (this.stopped) break
      const abort = (this.abort = new AbortController())
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${this.o.token}` }
        if (this.lastEventId !== undefined) headers['last-event-id'] = String(this.lastEventId)
        const res = await fetch(url, { headers, signal: abort.signal })
        if (!res.ok || !res.body) throw new Error(`status ${res.status}`)
        this.connects++
        const feed = createSseParser((m) => {
          if (m.event === 'reset') this.resets.push(this.received.length)
          if (m.id === undefined) return
          const seq = Number(m.id)
          this.received.push(seq)
          this.lastEventId = seq
          if (seq > this.maxSeq) this.maxSeq = seq
        })
        const reader = res.body.getReader()
        const decoder = new TextDecoder()
        for (;;) {
          if (this.gate) await this.gate
          const { done, value } = await reader.read()
          if (done) break
          feed(decoder.decode(value, { stream: true }))
        }
      } catch {
        // connection refused, reset, aborted: reconnect like EventSource
      }
      if (!this.stopped) await sleep(100 + Math.random() * 200)
    }
  }

  /** Stops reading (the bytes pile up in the socket, then in the edge's queue for this subscriber). */
  pause(): void {
    this.gate ??= new Promise((resolve) => (this.openGate = resolve))
  }

  resume(): void {
    this.gate = undefined
    this.openGate()
  }

  /** Drops the connection; the client reconnects once `until` resolves. */
  disconnect(until: Promise<void>): void {
    this.hold = until
    void until.then(() => (this.hold = undefined))
    this.abort?.abort()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.resume()
    this.abort?.abort()
    await this.done
  }
}
