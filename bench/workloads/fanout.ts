import { nowMs } from '../lib/hist.ts'
import { startChild } from '../lib/proc.ts'
import {
  closeAll,
  collect,
  connectAll,
  connections,
  cpuMs,
  openWindow,
  RELAY_SECRET,
  round,
  settle,
  startOurs,
  type Ctx,
} from '../lib/context.ts'

export interface FanoutStep {
  rate: number
  deliveriesPerS: number
  delivered: number
  /** The server process's CPU time per event delivered to a client, ns: the cost of fan-out, less moved by a busy machine than rates. */
  cpuNsPerDelivery: number | null
}

/**
 * Fan-out ceiling of one server process: 1,000 clients on one tenant, events posted straight to the server (no
 * Postgres, one batch in flight at a time, as the relay posts), the rate doubling until < 95 % is delivered.
 */
export const fanout = async (ctx: Ctx, system: 'ours' | 'raw') => {
  const clients = 1000
  const stepS = ctx.opts.quick ? 1.5 : 4
  const rates = ctx.opts.quick ? [200, 400, 800, 1600, 3200, 6400] : [50, 100, 200, 400, 800, 1600, 3200, 6400, 12800]
  const server =
    system === 'ours'
      ? await startOurs(ctx, { relay: false })
      : await (async () => {
          const c = await startChild('children/raw.ts')
          return { url: c.info.url as string, edge: c, stop: () => c.stop() }
        })()
  const steps: FanoutStep[] = []
  try {
    ctx.progress(`fan-out · ${system} · connecting ${clients} clients`)
    await connectAll(ctx, server.url, await connections(system, ['fan'], clients))
    // If even the first rate is too much , step down until one is delivered.
    const queue = [...rates]
    for (let rate = queue.shift(); rate !== undefined; rate = queue.shift()) {
      await openWindow(ctx, nowMs())
      const cpu0 = await cpuMs(server.edge)
      const w = await ctx.writer.call<{ published: number; ms: number }>(
        'run',
        { mode: system === 'ours' ? 'edge' : 'raw', rate, seconds: stepS, tenants: ['fan'], url: server.url, secret: RELAY_SECRET },
        120_000,
      )
      const expected = w.published * clients
      const t0 = Date.now()
      await settle(ctx, expected, ctx.opts.quick ? 1000 : 2000, 500)
      const { received } = await collect(ctx)
      const cpu = (await cpuMs(server.edge)) - cpu0
      const elapsedS = (w.ms + (Date.now() - t0)) / 1000
      const step = {
        rate,
        deliveriesPerS: Math.round(received / Math.max(stepS, elapsedS)),
        delivered: round(received / expected, 4) ?? 0,
        cpuNsPerDelivery: received ? Math.round((cpu * 1e6) / received) : null,
      }
      steps.push(step)
      ctx.progress(
        `fan-out · ${system} · ${rate} ev/s × ${clients}: ${step.deliveriesPerS} deliveries/s, ${(step.delivered * 100).toFixed(1)} % delivered, ${step.cpuNsPerDelivery} ns CPU a delivery`,
      )
      if (step.delivered >= 0.95) continue
      if (!steps.every((s) => s.delivered < 0.95) || rate <= rates[0]! / 8) break
      queue.splice(0, queue.length, rate / 2)
      await settle(ctx, Infinity, 10_000, 500) // let the backlog of the failed step drain first
    }
  } finally {
    await closeAll(ctx)
    await server.stop()
  }
  const ok = steps.filter((s) => s.delivered >= 0.95)
  const top = ok.reduce<FanoutStep | undefined>((a, s) => (a && a.deliveriesPerS >= s.deliveriesPerS ? a : s), undefined)
  return { ceiling: top?.deliveriesPerS ?? 0, cpuNsPerDelivery: top?.cpuNsPerDelivery ?? null, steps }
}
