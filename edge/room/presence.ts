import type { PresenceSnapshot } from '../../shared/presence.ts'
import { grantsAllow, type TopicFilter } from './topics.ts'

/** The presence keys one subscription counts under (see PresenceSnapshot). */
export const presenceKeys = ({ requested, grants }: TopicFilter): string[] => {
  if (requested && requested.length > 0) return requested.filter((t) => grantsAllow(grants, t))
  return grants ? [...grants] : ['*']
}

/**
 * Subscriber counts per key, and a coalescing timer: however many joins and leaves happen, `onChange` runs at most once per `intervalMs`
 * (the first change after a quiet period waits only for the current turn to end, so a burst of joins in one turn is one change).
 */
export class PresenceCounter {
  private counts = new Map<string, number>()
  /** Subscribers by their exact set of keys: a limited snapshot counts a group once if any key is visible (never `a,b` twice). */
  private groups = new Map<string, { keys: readonly string[]; n: number }>()
  private total = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastRun = -Infinity

  constructor(
    private readonly onChange: () => void,
    private readonly intervalMs: number,
  ) {}

  join(keys: readonly string[]): void {
    this.total++
    for (const k of keys) this.counts.set(k, (this.counts.get(k) ?? 0) + 1)
    const id = groupId(keys)
    const group = this.groups.get(id)
    if (group) group.n++
    else this.groups.set(id, { keys: [...keys], n: 1 })
    this.changed()
  }

  leave(keys: readonly string[]): void {
    this.total--
    for (const k of keys) {
      const n = (this.counts.get(k) ?? 0) - 1
      if (n > 0) this.counts.set(k, n)
      else this.counts.delete(k)
    }
    const id = groupId(keys)
    const group = this.groups.get(id)
    if (group && --group.n <= 0) this.groups.delete(id)
    this.changed()
  }

  /**
   * Counts as a token with `grants` (undefined = all) may see them: neither other topics' names nor how many listen to them (a limited
   * token's `subscribers` counts only those under a key it is shown).
   */
  snapshot(tenant: string, grants?: readonly string[]): PresenceSnapshot {
    const topics: Record<string, number> = {}
    const shown = new Set([...this.counts.keys()].filter((k) => grantsAllow(grants, k)).sort())
    for (const k of shown) topics[k] = this.counts.get(k)!
    if (grants === undefined) return { tenant, subscribers: this.total, topics }
    let subscribers = 0
    for (const { keys, n } of this.groups.values()) if (keys.some((k) => shown.has(k))) subscribers += n
    return { tenant, subscribers, topics }
  }

  /** Stops the pending notification (shutdown). */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.counts.clear()
    this.groups.clear()
    this.total = 0
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

/** One id per set of keys, whatever their order (keys are topics or grants: never a newline). */
const groupId = (keys: readonly string[]): string => [...keys].sort().join('\n')
