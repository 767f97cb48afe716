import type { Log } from '../shared/log.ts'
import type { Outbox } from './outbox.ts'
import { backoffMs, every, sleep } from './timing.ts'

/** How often poll mode asks which heads changed (one indexed query; nothing read when nothing changed). */
export const POLL_MS = 10

/**
 * How far back, in time, each poll reads again. Stamps are taken inside the writing transaction, so a transaction
 * can commit a stamp lower than one a poll has already seen (it took its stamp, then another tenant's transaction
 * took a higher one and committed first). A poll reads the stamps taken since a poll that ran LATE_MS ago, so such
 * a late committer is read by the first poll after its commit as long as it committed within about LATE_MS of
 * taking its stamp; one that stayed open longer is left to the sweep (RELAY_SWEEP_MS). Reading again costs one
 * row per tenant whose head moved in the last LATE_MS, and nudges nothing twice (see ChangeWindow).
 */
export const LATE_MS = 1_000

export interface Change {
  tenant: string
  seq: number
  stamp: number
}

/**
 * What the poller keeps between polls, without I/O (the clock is passed in): the stamp to read after, and each
 * tenant's head nudged for within the window, so that reading again nudges only heads that moved.
 */
export class ChangeWindow {
  /** The highest stamp seen by each poll of the last LATE_MS, oldest first. */
  private readonly polls: { at: number; stamp: number }[] = []
  /** Per tenant: the head last nudged for and its stamp, while that stamp is inside the window. */
  private readonly seen = new Map<string, { seq: number; stamp: number }>()

  /** `from`: a stamp every committed head was at or below when polling started (the sweep covers what was late). */
  constructor(private from: number) {}

  /** The stamp a poll starting at `now` reads after: the highest one seen by a poll that ended LATE_MS before. */
  after(now: number): number {
    const from = this.from
    while (this.polls.length && this.polls[0]!.at <= now - LATE_MS) this.from = Math.max(this.from, this.polls.shift()!.stamp)
    if (this.from !== from) for (const [tenant, s] of this.seen) if (s.stamp <= this.from) this.seen.delete(tenant)
    return this.from
  }

  /** A poll that ended at `now` read `rows`: the tenants whose head moved since they were last nudged. */
  changed(now: number, rows: readonly Change[]): string[] {
    let highest = this.polls.at(-1)?.stamp ?? this.from
    const moved: string[] = []
    for (const r of rows) {
      highest = Math.max(highest, r.stamp)
      const s = this.seen.get(r.tenant)
      if (s && s.seq >= r.seq) continue
      this.seen.set(r.tenant, { seq: r.seq, stamp: r.stamp })
      moved.push(r.tenant)
    }
    this.polls.push({ at: now, stamp: highest })
    return moved
  }

  /** Tenants remembered (for tests: the window forgets what it has passed). */
  get size(): number {
    return this.seen.size
  }
}

/**
 * Poll mode's trigger (RELAY_MODE=poll): every POLL_MS, the heads stamped since the window's start, and `onChange`
 * for each tenant whose head moved — what a NOTIFY does in notify mode. A failing poll (the database restarting)
 * is logged once per outage and retried with backoff.
 */
export const startPoller = ({
  outbox,
  onChange,
  log,
  now = Date.now,
}: {
  outbox: Pick<Outbox, 'changedHeads' | 'lastStamp'>
  onChange: (tenant: string) => void
  log: Log
  now?: () => number
}) => {
  let window: ChangeWindow | undefined
  let failures = 0
  const poll = async () => {
    try {
      window ??= new ChangeWindow(await outbox.lastStamp())
      const rows = await outbox.changedHeads(window.after(now()))
      for (const tenant of window.changed(now(), rows)) onChange(tenant)
      if (failures) log('info', 'polling again', { failures })
      failures = 0
    } catch (err) {
      if (failures++ === 0) log('warn', 'poll failed; retrying', { err: String(err) })
      // Short: a poll that waits out its backoff after the database is back delays every tenant by as much.
      await sleep(backoffMs(failures, POLL_MS, 200))
    }
  }
  return every(POLL_MS, poll, () => {}, { immediate: true })
}
