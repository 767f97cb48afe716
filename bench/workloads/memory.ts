import { startChild } from '../lib/proc.ts'
import { closeAll, connectAll, connections, sleep, startOurs, type Ctx, type System } from '../lib/context.ts'

/** RSS per idle SSE connection: the server's RSS (after a full GC) before and after `n` clients connect. */
export const memoryPerConnection = async (ctx: Ctx, system: System, n = 10_000) => {
  const server =
    system === 'ours'
      ? await startOurs(ctx, { relay: false, gc: true })
      : await (async () => {
          const env: Record<string, string> = system === 'baseline' ? { DATABASE_URL: ctx.db.url } : {}
          const c = await startChild(system === 'baseline' ? 'baseline/server.ts' : 'children/raw.ts', env, ['--expose-gc'])
          return { url: c.info.url as string, edge: c, stop: () => c.stop() }
        })()
  try {
    const tenants = Array.from({ length: 100 }, (_, i) => `mem${i}`)
    // Warm the code paths first so that the measured growth is connections, not JIT and lazy modules.
    await connectAll(ctx, server.url, await connections(system, tenants, 2))
    await closeAll(ctx)
    await sleep(500)
    const before = await server.edge.call<{ rss: number; heapUsed: number }>('memory')
    ctx.progress(`memory · ${system} · connecting ${n} idle clients`)
    await connectAll(ctx, server.url, await connections(system, tenants, n / tenants.length))
    await sleep(1000)
    const after = await server.edge.call<{ rss: number; heapUsed: number }>('memory')
    const perConn = Math.round((after.rss - before.rss) / n)
    const heapPerConn = Math.round((after.heapUsed - before.heapUsed) / n)
    ctx.progress(`memory · ${system} · ${perConn} B RSS per connection (${heapPerConn} B of JS heap)`)
    return { bytesPerConnection: perConn, heapBytesPerConnection: heapPerConn, rssBefore: before.rss, rssAfter: after.rss }
  } finally {
    await closeAll(ctx)
    await server.stop()
  }
}
