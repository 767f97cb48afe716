import { execFile } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { nowMs } from '../lib/hist.ts'
import { collect, openWindow, settle, startOurs, summary, type Ctx } from '../lib/context.ts'

const TENANTS = 64
const SCRIPT = `\\set n random(1, ${TENANTS})\nselect relay.publish('d' || :n, 'bench', '{"x": 1}');\n`

/** pgbench from PATH or the Debian layout; undefined when neither exists (we then use a Node writer). */
const findPgbench = () => {
  for (const dir of (process.env.PATH ?? '').split(':')) if (existsSync(join(dir, 'pgbench'))) return join(dir, 'pgbench')
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) if (existsSync(join(root, v, 'bin/pgbench'))) return join(root, v, 'bin/pgbench')
  return undefined
}

/** Saturating publishers for `seconds`; returns committed transactions (= events) and the elapsed time. */
const saturate = async (ctx: Ctx, seconds: number, clients = 8): Promise<{ events: number; tool: string }> => {
  const pgbench = findPgbench()
  if (pgbench) {
    const script = join(tmpdir(), `edge-relay-bench-${process.pid}.sql`)
    writeFileSync(script, SCRIPT)
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        pgbench,
        ['-n', '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', script, ctx.db.url],
        { timeout: (seconds + 60) * 1000 },
        (err, stdout, stderr) => (err ? reject(new Error(`pgbench failed: ${stderr || err.message}`)) : resolve(stdout)),
      ),
    )
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN)
    return { events: processed, tool: `pgbench (${clients} clients, 1 publish per transaction, ${TENANTS} tenants)` }
  }
  // No pgbench: the same transactions from Node, `clients` connections in tight loops.
  const sql = postgres(ctx.db.url, { max: clients, onnotice: () => {} })
  const until = Date.now() + seconds * 1000
  let events = 0
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        await sql`select relay.publish(${`d${1 + Math.floor(Math.random() * TENANTS)}`}, 'bench', '{"x": 1}'::jsonb)`
        events++
      }
    }),
  )
  await sql.end({ timeout: 1 })
  return { events, tool: `Node writer (${clients} postgres.js connections; pgbench not found)` }
}

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
  const bare = await measure('floor', 'pg_notify only')
  const publishing = await measure('floor-publish', 'relay.publish() + pg_notify')
  return { p50: bare.p50, p99: bare.p99, publishing: { p50: publishing.p50, p99: publishing.p99 } }
}
