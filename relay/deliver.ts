import { setMaxListeners } from 'node:events'
import type { Log } from '../shared/log.ts'
import type { PublishBody, PublishReply } from '../shared/schema.ts'
import { backoffMs, sleep } from './backoff.ts'
import type { Outbox } from './outbox.ts'

export interface DelivererOptions {
  edge: string
  outbox: Outbox
  post: (body: PublishBody, signal: AbortSignal) => Promise<PublishReply>
  batchSize: number
  retryCapMs: number
  resendMax: number
  log: Log
  /** Called after each confirmed batch (metrics, tests). */
  onDelivered?: (tenant: string, events: number, head: number) => void
}

/**
 * Delivers one edge's backlog: per tenant, one batch in flight; tenants in parallel. The cursor (in Postgres)
 * moves only to what the edge confirmed, so a crash at any point re-sends and the room drops the duplicates.
 */
export class Deliverer {
  private cursors = new Map<string, number>()
  private running = new Map<string, Promise<void>>()
  private again = new Set<string>()
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

  private async cursor(tenant: string) {
    let c = this.cursors.get(tenant)
    if (c === undefined) this.cursors.set(tenant, (c = await this.o.outbox.cursor(this.o.edge, tenant)))
    return c
  }

  private async run(tenant: string) {
    const { outbox, batchSize } = this.o
    let skipped = false
    for (;;) {
      if (this.stopping) return // finish the batch in flight, start no other
      const cursor = await this.cursor(tenant)
      const events = await outbox.after(tenant, cursor, batchSize)
      if (events.length === 0) return
      // Tell the room the events before this batch are gone for good (retention pruned them, or we skipped ahead
      // on purpose) so that it starts here instead of asking again for what no longer exists.
      const rebase = skipped || events[0]!.seq !== cursor + 1
      const reply = await this.postWithRetry({ tenant, events, ...(rebase ? { rebase } : {}) })
      if (!reply) return // stopping
      const last = events[events.length - 1]!.seq
      if (reply.head >= last) {
        this.cursors.set(tenant, last)
        this.saveLater(tenant, last)
        this.o.onDelivered?.(tenant, events.length, reply.head)
        skipped = false
        // A short batch was everything committed when we read: stop here instead of asking again. Anything
        // committed since has sent its own nudge, which re-runs this tenant (see `again`).
        if (events.length < batchSize) return
      } else {
        // The room is behind what we sent (it restarted, or our cursor ran ahead): resend from its head, but no
        // further back than resendMax — older events are then announced as a rebase.
        const from = Math.max(reply.head, last - this.o.resendMax)
        this.o.log('warn', 'room behind relay cursor; resending', { edge: this.o.edge, tenant, head: reply.head, from })
        this.cursors.set(tenant, from)
        this.saveLater(tenant, from)
        skipped = from > reply.head
      }
    }
  }

  /**
   * Cursors are written behind delivery, batched: a commit per delivered batch would queue the latency-critical
   * reads behind fsyncs (measured: light load, 100 tenants — see docs/performance.md). Saving late is safe: after a
   * crash the relay resends from the older cursor and the room ignores what it has. Saves run one at a time, so a
   * tenant's cursor is written in the order it moved.
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
        await sleep(backoffMs(attempt++, 100, this.o.retryCapMs), this.abort.signal)
      }
    }
  }

  private async postWithRetry(body: PublishBody): Promise<PublishReply | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) return undefined
      try {
        const reply = await this.o.post(body, this.abort.signal)
        this.failures = 0
        return reply
      } catch (err) {
        this.failures++
        if (this.abort.signal.aborted) return undefined
        const wait = backoffMs(attempt, 100, this.o.retryCapMs)
        if (attempt === 0 || attempt % 10 === 0)
          this.o.log('warn', 'edge unreachable; retrying', { edge: this.o.edge, tenant: body.tenant, attempt, waitMs: wait, err: String(err) })
        await sleep(wait, this.abort.signal)
      }
    }
  }

  /**
   * Lets batches in flight finish (up to `graceMs`), then abandons retries. The cursors stay where confirmed.
   * Resolves at most ~1 s after the grace even if a database query hangs (a silent network cut): such a run, if its
   * query ever returns, finds the abort signal set and posts nothing.
   */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true
    this.again.clear()
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
