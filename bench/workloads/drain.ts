import { nowMs } from '../lib/hist.ts'
import { collect, openWindow, settle, startOurs, summary, type Ctx } from '../lib/context.ts'
import { publishers } from '../lib/publishers.ts'

/** Saturating publishers for `seconds` (8 clients over 64 tenants, with NOTIFY); committed transactions = events. */
const saturate = (ctx: Ctx, seconds: number) => publishers({ url: ctx.db.url, clients: 8, seconds, tenants: 64, notify: true })

/** Sum of heads and of the edge's acknowledged cursors: the relay has caught up when they are equal. */
const progressOf = async (ctx: Ctx) => {
  const [row] = await ctx.db.sql<{ head: string; delivered: string }[]>`
    select (select coalesce(sum(seq), 0) from relay.heads) as head, (select coalesce(sum(delivered), 0) from relay.cursors) as delivered`
  return { head: Number(row!.head), delivered: Number(row!.delivered) }
}

/**
 * 1. The commit ceiling: saturating publishers with no relay running (publishing transactions/s).
 * 2. Relay drain at saturation: the relay and an edge then start on that backlog; events acknowledged by the edge
 *    (the relay's saved cursors) per second, from the first acknowledgement to the last.
 * 3. Keeping up: the same load again with the relay running; the commit rate then and the lag after the last commit.
 */
export const drain = async (ctx: Ctx) => {
  const seconds = ctx.opts.quick ? 5 : 10
  await ctx.db.reset()
  ctx.progress(`relay drain · commit ceiling: ${seconds}s of saturating publishers, no relay`)
  const ceiling = await saturate(ctx, seconds)
  const commitCeiling = Math.round(ceiling.events / seconds)
  ctx.progress(`relay drain · commit ceiling ${commitCeiling} publishing transactions/s (${ceiling.tool})`)

  // Split: the relay posts over HTTP to an edge process (the slower of our two shapes; see startOurs).
  const ours = await startOurs(ctx, { split: true })
  try {
    ctx.progress(`relay drain · relay draining the ${ceiling.events}-event backlog to the edge`)
    let first: { at: number; delivered: number } | undefined
    let last = { at: Date.now(), delivered: 0, head: 0 }
    const t0 = Date.now()
    for (;;) {
      const p = await progressOf(ctx)
      const at = Date.now()
      if (!first && p.delivered > 0) first = { at, delivered: p.delivered }
      last = { at, ...p }
      if ((p.delivered >= p.head && p.head > 0) || at - t0 > 60_000) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const drained = first ? last.delivered - first.delivered : 0
    const relayRate = first && last.at > first.at ? Math.round(drained / ((last.at - first.at) / 1000)) : 0
    ctx.progress(
      `relay drain · ${relayRate} events/s acknowledged by the edge (${((relayRate / commitCeiling) * 100).toFixed(0)} % of the commit ceiling)`,
    )

    ctx.progress(`relay drain · ${seconds}s of saturating publishers with the relay running`)
    const loaded = await saturate(ctx, seconds)
    const loadedEnd = Date.now()
    for (;;) {
      const p = await progressOf(ctx)
      if (p.delivered >= p.head || Date.now() - loadedEnd > 60_000) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const lagMs = Date.now() - loadedEnd
    const loadedCommitRate = Math.round(loaded.events / seconds)
    ctx.progress(
      `relay drain · with the relay running: ${loadedCommitRate} commits/s, all acknowledged ${lagMs} ms after the last commit (${loaded.events} events)`,
    )
    return { commitCeiling, relayRate, backlogEvents: ceiling.events, loadedCommitRate, lagAfterLastCommitMs: lagMs, tool: ceiling.tool }
  } finally {
    await ours.stop()
  }
}

/**
 * Commit → a bare postgres.js LISTEN in a client process, at 100 NOTIFYs/s: the floor under any relay. Twice: for a
 * transaction that only notifies (no WAL to flush at commit), and for one that also publishes an event (its rows
 * flushed at commit, as every real publish is; the NOTIFY is our relay's nudge, the row what it then reads).
 */
export const floor = async (ctx: Ctx) => {
  const seconds = ctx.opts.quick ? 3 : 10
  const w = ctx.workers[0]!
  await w.call('listen', { url: ctx.db.url, channel: 'floor' })
  const measure = async (mode: 'floor' | 'floor-publish', what: string) => {
    await openWindow(ctx, nowMs())
    ctx.progress(`floor · commit (${what}) → bare LISTEN at 100/s for ${seconds}s`)
    const r = await ctx.writer.call<{ published: number }>('run', { mode, rate: 100, seconds, tenants: ['floor'] }, 120_000)
    await settle(ctx, r.published, 2000)
    const { hist, received } = await collect(ctx)
    const s = summary(hist)
    ctx.progress(`floor · ${what}: p50 ${s.p50} ms · p99 ${s.p99} ms (${received}/${r.published})`)
    return s
  }
  try {
    const bare = await measure('floor', 'pg_notify only')
    const publishing = await measure('floor-publish', 'relay.publish() + pg_notify')
    return { p50: bare.p50, p99: bare.p99, publishing: { p50: publishing.p50, p99: publishing.p99 } }
  } finally {
    await w.call('unlisten')
  }
}
