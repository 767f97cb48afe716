import { setMaxListeners } from 'node:events'
import { RelayError } from '../shared/errors.ts'
import type { Log } from '../shared/log.ts'
import { BATCH_BYTES, BATCH_EVENTS, EVENTS, type UndeliverableMarker } from '../shared/protocol.ts'
import type { PublishBody, PublishReply, WireEvent } from '../shared/schema.ts'
import { backoffMs } from '../shared/backoff.ts'
import { sleep } from '../shared/backoff.ts'
import { describeFailure } from './edge-client.ts'
import type { Outbox } from './outbox.ts'

export interface DelivererOptions {
  edge: string
  outbox: Outbox
  post: (body: PublishBody, signal: AbortSignal) => Promise<PublishReply>
  log: Log
  /** Called after each confirmed batch (metrics, tests). */
  onDelivered?: (tenant: string, events: number, head: number) => void
  /** Called when an event the edge refused was delivered as a marker instead (metrics). */
  onUndeliverable?: (tenant: string, seq: number, reason: string) => void
}

/** Longest wait between retries to an edge that does not answer (or whose database writes fail). */
const RETRY_CAP_MS = 5_000

/** At most this many events refill a room behind the cursor (older ones: a rebase): a room's default HISTORY_LIMIT. */
const RESEND_MAX = 10_000

/**
 * A refusal of the events themselves (too large, invalid): retrying the same batch would stall the tenant for good.
 * Anything else (unreachable, 5xx, 429, a refused signature, a wrong URL) is retried, and the delivery lag shows it.
 */
const refusesEvents = (err: unknown): err is RelayError =>
  err instanceof RelayError && (err.code === 'TOO_LARGE' || err.code === 'INVALID_BODY')

/** The marker that stands in for an event the edge refused: same seq and topic, so the sequence stays gapless. */
const markerFor = (e: WireEvent, err: RelayError): WireEvent => {
  const marker: UndeliverableMarker = { topic: e.topic, bytes: Buffer.byteLength(e.data), reason: err.message.slice(0, 300) }
  const event = err.code === 'TOO_LARGE' ? EVENTS.oversize : EVENTS.undeliverable
  return { seq: e.seq, topic: e.topic, ts: e.ts, event, data: JSON.stringify(marker) }
}

/**
 * Delivers one edge's backlog: per tenant, one batch in flight; tenants in parallel. The cursor (in Postgres)
 * moves only to what the edge confirmed, so a crash at any point re-sends and the room drops the duplicates.
 */
export class Deliverer {
  private cursors = new Map<string, number>()
  private running = new Map<string, Promise<void>>()
  private again = new Set<string>()
  /** Tenants whose room must be checked against the cursor before the next batch (see recheck), and their waiters. */
  private unchecked = new Map<string, () => void>()
  /** Confirmed cursors not yet written to Postgres; one save in flight at a time takes them all (see saveLater). */
  private unsaved = new Map<string, number>()
  private saving: Promise<void> | undefined
  private readonly abort = new AbortController()
  private stopping = false
  /** Consecutive failed posts (any tenant); 0 when the edge is answering. */
  failures = 0

  constructor(private readonly o: DelivererOptions) {
    // One signal serves every concurrent post and retry wait (one per tenant): that many listeners is expected.
    setMaxListeners(0, this.abort.signal)
  }

  get edge() {
    return this.o.edge
  }

  /** Something may be new for `tenant`: deliver it (coalesces with a run already in flight). */
  nudge(tenant: string): void {
    if (this.stopping) return
    if (this.running.has(tenant)) {
      this.again.add(tenant)
      return
    }
    const run = this.run(tenant)
      .catch((err) => this.o.log('error', 'delivery loop failed', { edge: this.o.edge, tenant, err: String(err) }))
      .finally(() => {
        this.running.delete(tenant)
        if (this.again.delete(tenant)) this.nudge(tenant)
      })
    this.running.set(tenant, run)
  }

  /** Tenants with a batch in flight. */
  get busy(): number {
    return this.running.size
  }

  private async run(tenant: string) {
    let skipped = false
    let readLimit = BATCH_EVENTS
    for (;;) {
      if (this.stopping) return // finish the batch in flight, start no other
      let cursor = this.cursors.get(tenant)
      if (cursor === undefined) this.cursors.set(tenant, (cursor = await this.o.outbox.cursor(this.o.edge, tenant)))
      const check = this.unchecked.get(tenant)
      if (check) {
        // The edge restarted: its room may have come back empty while our cursor says it has everything. Ask for
        // its head and refill what it lost, or a quiet tenant's resumes would wait for the next commit.
        this.unchecked.delete(tenant)
        const reply = cursor > 0 ? await this.send({ tenant, events: [] }) : undefined
        if (reply && reply.head < cursor) {
          this.o.log('info', 'room restarted behind relay cursor; refilling', { edge: this.o.edge, tenant, head: reply.head })
          ;({ cursor, skipped } = this.rewind(tenant, reply.head, cursor))
          // Saved before the check counts as done: a relay dying now resends from here, not from a cursor the empty room never had.
          await this.saving
        }
        check()
      }
      const { events, more } = await this.o.outbox.after(tenant, cursor, readLimit, BATCH_BYTES)
      if (events.length === 0) return
      // Next, read about twice what fits the byte cap, not BATCH_EVENTS rows (each turned into text) for a few large ones.
      const bytes = events.reduce((n, e) => n + e.data.length, 0)
      readLimit = Math.max(1, Math.min(BATCH_EVENTS, Math.ceil((2 * BATCH_BYTES * events.length) / Math.max(1, bytes))))
      // Tell the room the events before this batch are gone for good (retention pruned them, or we skipped ahead
      // on purpose) so that it starts here instead of asking again for what no longer exists.
      const rebase = skipped || events[0]!.seq !== cursor + 1
      const reply = await this.send({ tenant, events, ...(rebase ? { rebase } : {}) })
      if (!reply) return // stopping
      const last = events[events.length - 1]!.seq
      if (reply.head >= last) {
        this.cursors.set(tenant, last)
        this.saveLater(tenant, last)
        this.o.onDelivered?.(tenant, events.length, reply.head)
        skipped = false
        // A read that stopped short of its bounds was everything committed when we read: stop here instead of
        // asking again. Anything committed since has sent its own nudge, which re-runs this tenant (see `again`).
        if (!more) return
      } else {
        // The room is behind what we sent (it restarted, or our cursor ran ahead).
        this.o.log('warn', 'room behind relay cursor; resending', { edge: this.o.edge, tenant, head: reply.head })
        skipped = this.rewind(tenant, reply.head, last).skipped
      }
    }
  }

  /** Moves the cursor back to the room's head, at most RESEND_MAX before `upTo` (older events: a rebase, `skipped`), and saves it. */
  private rewind(tenant: string, head: number, upTo: number): { cursor: number; skipped: boolean } {
    const cursor = Math.max(head, upTo - RESEND_MAX)
    this.cursors.set(tenant, cursor)
    this.saveLater(tenant, cursor)
    return { cursor, skipped: cursor > head }
  }

  /**
   * Posts a batch. If the edge refuses the events themselves (see refusesEvents), finds the offenders by halving the
   * batch and delivers each as a marker with its seq (see markerFor): one undeliverable event never holds back the rest.
   */
  private async send(body: PublishBody): Promise<PublishReply | undefined> {
    try {
      return await this.postWithRetry(body)
    } catch (err) {
      if (!refusesEvents(err) || body.events.length === 0) throw err
      const { events } = body
      if (events.length === 1) {
        const e = events[0]!
        const at = { edge: this.o.edge, tenant: body.tenant, seq: e.seq, topic: e.topic }
        this.o.log('error', 'edge refused an event; delivering a marker in its place', { ...at, code: err.code, reason: err.message })
        this.o.onUndeliverable?.(body.tenant, e.seq, err.code)
        return this.postWithRetry({ ...body, events: [markerFor(e, err)] }, true)
      }
      const mid = events.length >> 1
      const first = await this.send({ ...body, events: events.slice(0, mid) })
      // Stopping, or the room wants an older start: the caller's loop decides from this head.
      if (!first || first.head < events[mid - 1]!.seq) return first
      const { rebase: _, ...rest } = body
      return this.send({ ...rest, events: events.slice(mid) })
    }
  }

  /**
   * Cursors are written behind delivery, batched: a commit per delivered batch would queue the latency-critical reads
   * behind fsyncs (measured: light load, 100 tenants). Saving late is safe: after a crash the relay resends from the
   * older cursor and the room ignores what it has. Saves run one at a time, so a cursor is written in the order it moved.
   */
  private saveLater(tenant: string, delivered: number) {
    this.unsaved.set(tenant, delivered)
    this.saving ??= this.saveAll().finally(() => (this.saving = undefined))
  }

  private async saveAll(): Promise<void> {
    for (let attempt = 0; this.unsaved.size > 0; ) {
      const batch = this.unsaved
      this.unsaved = new Map()
      try {
        await this.o.outbox.saveCursors(this.o.edge, batch)
        attempt = 0
      } catch (err) {
        // Keep what moved since; put back the rest and retry (the cursors in memory are already right).
        for (const [t, c] of batch) if (!this.unsaved.has(t)) this.unsaved.set(t, c)
        if (this.abort.signal.aborted) return
        this.o.log('warn', 'saving cursors failed; retrying', { edge: this.o.edge, err: String(err) })
        await sleep(backoffMs(attempt++, 100, RETRY_CAP_MS), this.abort.signal)
      }
    }
  }

  /**
   * Posts until the edge answers. A refusal of the events is thrown to `send` (unless `final`: a marker refused
   * too means the edge refuses everything, which retrying shows in the lag). Everything else is retried with backoff.
   */
  private async postWithRetry(body: PublishBody, final = false): Promise<PublishReply | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) return undefined
      try {
        const reply = await this.o.post(body, this.abort.signal)
        this.failures = 0
        return reply
      } catch (err) {
        if (refusesEvents(err) && !final) throw err
        this.failures++
        if (this.abort.signal.aborted) return undefined
        const wait = backoffMs(attempt, 100, RETRY_CAP_MS)
        if (attempt === 0 || attempt % 10 === 0)
          this.o.log('warn', describeFailure(err), { edge: this.o.edge, tenant: body.tenant, attempt, waitMs: wait, err: String(err) })
        await sleep(wait, this.abort.signal)
      }
    }
  }

  /**
   * The edge restarted (its rooms may be empty): check each of these tenants' rooms against our cursor before its
   * next batch, and refill what they lost. Resolves once all were checked (or the deliverer stops).
   */
  recheck(tenants: Iterable<string>): Promise<void> {
    if (this.stopping) return Promise.resolve()
    const all = new Set([...tenants, ...[...this.cursors].filter(([, c]) => c > 0).map(([t]) => t)])
    const done: Promise<void>[] = []
    for (const tenant of all) {
      const prev = this.unchecked.get(tenant)
      done.push(new Promise((resolve) => this.unchecked.set(tenant, () => (prev?.(), resolve()))))
      this.nudge(tenant)
    }
    return Promise.all(done).then(() => {})
  }

  /**
   * Lets batches in flight finish (up to `graceMs`), then abandons retries; the cursors stay where confirmed. Resolves at
   * most ~1 s after the grace even if a query hangs (a silent network cut): such a run, if it ever returns, posts nothing.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true
    this.again.clear()
    for (const done of this.unchecked.values()) done()
    this.unchecked.clear()
    const timer = setTimeout(() => this.abort.abort(), graceMs)
    const giveUp = new AbortController() // ends the fallback sleep once the runs are done
    await Promise.race([Promise.allSettled([...this.running.values()]), sleep(graceMs + 1_000, giveUp.signal)])
    giveUp.abort()
    // Write the confirmed cursors before going (a failure here costs resends, never data).
    const aborted = new Promise<void>((r) => this.abort.signal.addEventListener('abort', () => r(), { once: true }))
    while (this.saving && !this.abort.signal.aborted) await Promise.race([this.saving, aborted])
    clearTimeout(timer)
    this.abort.abort()
  }
}
