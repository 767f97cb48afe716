import type { Sql } from 'postgres'
import type { Log } from '../shared/log.ts'
import { every } from './timing.ts'

export interface RetentionOptions {
  sql: Sql
  /** Every configured edge: an event is pruned only once all of them confirmed it. */
  edges: string[]
  /** Keep events younger than this (0 = no age limit). */
  ageS: number
  /** Keep at most this many newest events per tenant (0 = no count limit). */
  count: number
  intervalMs: number
  log: Log
}

const BATCH = 10_000

/** Retention runs every this many edge checks (relay.ts): once a minute at the default RELAY_SWEEP_MS, in either mode. */
export const RETENTION_EVERY_CHECKS = 12

/**
 * Prunes relay.events outside the retention window, in batches so no delete holds locks for long. `relay.prune`
 * never deletes past the smallest cursor of the configured edges: an edge that is down keeps its backlog.
 */
export const pruneOnce = async ({ sql, edges, ageS, count }: Pick<RetentionOptions, 'sql' | 'edges' | 'ageS' | 'count'>) => {
  const age = ageS > 0 ? `${ageS} seconds` : null
  const keep = count > 0 ? count : null
  let total = 0
  for (;;) {
    const [row] = await sql<{ n: string }[]>`select relay.prune(${edges}::text[], ${age}::interval, ${keep}::bigint, ${BATCH}) as n`
    const n = Number(row?.n ?? 0)
    total += n
    if (n < BATCH) return total
  }
}

/** Runs `pruneOnce` every `intervalMs` while leading. */
export const startRetention = (o: RetentionOptions) => {
  const state = { pruned: 0, lastRunAt: 0 }
  const prune = async () => {
    const n = await pruneOnce(o)
    state.pruned += n
    state.lastRunAt = Date.now()
    if (n > 0) o.log('info', 'retention pruned events', { events: n })
  }
  const onError = (err: unknown) => o.log('warn', 'retention failed', { err: String(err) })
  const loop = o.ageS > 0 || o.count > 0 ? every(o.intervalMs, prune, onError) : undefined
  return { state, stop: async () => loop?.stop() }
}
