import type { Log } from '../shared/log.ts'
import type { Change, Outbox } from './outbox.ts'
import { backoffMs } from '../shared/backoff.ts'
import { sleep } from '../shared/backoff.ts'
import { every } from './timing.ts'

/**
 * How often poll mode asks which heads changed: one indexed query, which reads nothing when nothing changed. A
 * commit waits for the next poll, half of this on average (10 ms measured ~3 ms more at p50 than 5 ms here).
 */
const POLL_MS = 5

/**
 * Late committers. Stamps are taken inside the writing transaction, so a transaction can commit a stamp lower than
 * one a poll has already seen (it took its stamp, then another tenant's transaction took a higher one and committed
 * first). So polls read again the stamps taken since an earlier poll: each poll those of the last RECENT_MS (a
 * commit's usual delay, WAL flush included), and every RECENT_MS one poll those of the last LATE_MS. A transaction
 * that commits within RECENT_MS of taking its stamp is read by the first poll after its commit; within LATE_MS, by
 * the next deep poll (≤ RECENT_MS later); after that, by the sweep (RELAY_SWEEP_MS). Reading again costs a row per
 * tenant whose head moved in the window, and nudges nothing twice (see ChangeWindow).
 */
export const RECENT_MS = 100
export const LATE_MS = 1_000

/**
 * What the poller keeps between polls, without I/O (the clock is passed in): the stamp to read after, and each
 * tenant's head nudged for within the window, so that reading again nudges only heads that moved.
 */
export class ChangeWindow {
  /** The highest stamp seen by each poll of the last LATE_MS, oldest first. */
  private readonly polls: { at: number; stamp: number }[] = []
  /** Per tenant, in the order nudged: the head last nudged for and its stamp, while that stamp is inside the window. */
  private readonly seen = new Map<string, { seq: number; stamp: number }>()

  /** `from`: a stamp every committed head was at or below when polling started (the sweep covers what was late). */
  constructor(private from: number) {}

  /**
   * The stamp a poll starting at `now` reads after: the highest one seen by a poll that ended `back` ms before
   * (RECENT_MS, or LATE_MS for a deep poll; never more than LATE_MS).
   */
  after(now: number, back = LATE_MS): number {
    const from = this.from
    while (this.polls.length && this.polls[0]!.at <= now - LATE_MS) this.from = Math.max(this.from, this.polls.shift()!.stamp)
    // `seen` is in the order heads were nudged, so about in stamp order: forget from the front, up to the first entry
    // above the floor (amortised O(1) a poll; an entry left behind a late one only suppresses a head already nudged).
    if (this.from !== from)
      for (const [tenant, s] of this.seen) {
        if (s.stamp > this.from) break
        this.seen.delete(tenant)
      }
    // Each entry holds the highest stamp seen up to its poll, so the last one old enough is the floor.
    for (let i = this.polls.length - 1; i >= 0; i--) if (this.polls[i]!.at <= now - back) return this.polls[i]!.stamp
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
      this.seen.delete(r.tenant) // to the back: see after()
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
  // Monotonic: a wall clock stepped forward would close the window early.
  now = () => performance.now(),
}: {
  outbox: Pick<Outbox, 'changedHeads' | 'lastStamp'>
  onChange: (tenant: string) => void
  log: Log
  now?: () => number
}) => {
  let window: ChangeWindow | undefined
  let failures = 0
  let deepAt = 0
  const poll = async () => {
    try {
      window ??= new ChangeWindow(await outbox.lastStamp())
      const start = now()
      const deep = start - deepAt >= RECENT_MS
      if (deep) deepAt = start
      const rows = await outbox.changedHeads(window.after(start, deep ? LATE_MS : RECENT_MS))
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
