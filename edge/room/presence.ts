import type { PresenceSnapshot } from '../../shared/presence.ts'
import { grantsAllow, type TopicFilter } from './topics.ts'

/** The presence keys one subscription counts under (see PresenceSnapshot). */
export const presenceKeys = ({ requested, grants }: TopicFilter): string[] => {
  if (requested && requested.length > 0) return requested.filter((t) => grantsAllow(grants, t))
  return grants ? [...grants] : ['*']
}

/**
 * Subscribers by their exact set of keys (groupId → how many): plain JSON, so the parts of a sharded room can add theirs up. A group,
 * not a count per key, because a limited snapshot counts a subscriber once if any of its keys is shown (never `a,b` twice).
 */
export type Tally = Record<string, number>

/** One id per set of keys, whatever their order (keys are topics or grants: never a newline). */
const groupId = (keys: readonly string[]): string => [...keys].sort().join('\n')
const keysOf = (id: string): string[] => (id === '' ? [] : id.split('\n'))

/** The tallies added up. */
export const sumTallies = (tallies: Iterable<Tally>): Tally => {
  // A Map, then fromEntries: a topic may be named `__proto__`, which an object's assignment would take for its prototype.
  const sum = new Map<string, number>()
  for (const t of tallies) for (const [id, n] of Object.entries(t)) sum.set(id, (sum.get(id) ?? 0) + n)
  return Object.fromEntries(sum)
}

/** Subscribers a tally counts. */
export const tallySize = (t: Tally): number => Object.values(t).reduce((a, n) => a + n, 0)

/**
 * The counts of these tallies as a token with `grants` (undefined = all) may see them: neither other topics' names nor how many listen to
 * them (a limited token's `subscribers` counts only those under a key it is shown).
 */
export const presenceSnapshot = (tenant: string, tallies: Iterable<Tally>, grants?: readonly string[]): PresenceSnapshot => {
  const counts = new Map<string, number>()
  let subscribers = 0
  for (const tally of tallies)
    for (const [id, n] of Object.entries(tally)) {
      let shown = grants === undefined
      for (const k of keysOf(id))
        if (grantsAllow(grants, k)) {
          counts.set(k, (counts.get(k) ?? 0) + n)
          shown = true
        }
      if (shown) subscribers += n
    }
  // fromEntries, not assignment: a topic may be named `__proto__`.
  const topics = Object.fromEntries([...counts.keys()].sort().map((k) => [k, counts.get(k)!]))
  return { tenant, subscribers, topics }
}

/**
 * A room's subscriber counts, plus `others` (the rest of a sharded room, told by its other parts), and a coalescing timer: however many
 * joins and leaves happen, `onChange` runs at most once per `intervalMs` (the first change after a quiet period waits only for the current
 * turn to end, so a burst of joins in one turn is one change).
 */
export class PresenceCounter {
  private own = new Map<string, number>()
  private others: Tally = {}
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastRun = -Infinity

  constructor(
    private readonly onChange: () => void,
    private readonly intervalMs: number,
  ) {}

  join(keys: readonly string[]): void {
    const id = groupId(keys)
    this.own.set(id, (this.own.get(id) ?? 0) + 1)
    this.changed()
  }

  leave(keys: readonly string[]): void {
    const id = groupId(keys)
    const n = (this.own.get(id) ?? 0) - 1
    if (n > 0) this.own.set(id, n)
    else this.own.delete(id)
    this.changed()
  }

  /** This room's own subscribers. */
  tally(): Tally {
    return Object.fromEntries(this.own)
  }

  /** The subscribers the rest of a sharded room holds: counted in every snapshot from now on; a change like a join, unless not `notify`. */
  setOthers(others: Tally, notify = true): void {
    this.others = others
    if (notify) this.changed()
  }

  /** Counts, with the others', as a token with `grants` (undefined = all) may see them (presenceSnapshot). */
  snapshot(tenant: string, grants?: readonly string[]): PresenceSnapshot {
    return presenceSnapshot(tenant, [this.tally(), this.others], grants)
  }

  /** Stops the pending notification (shutdown). */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.own.clear()
    this.others = {}
  }

  private changed() {
    if (this.timer !== undefined) return
    const wait = Math.max(0, this.lastRun + this.intervalMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.lastRun = Date.now()
      this.onChange()
    }, wait)
    // A pending presence event must not keep a process alive (Node and Deno timers support unref).
    ;(this.timer as { unref?: () => void }).unref?.()
  }
}
