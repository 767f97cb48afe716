import type { Ctx } from '../lib/context.ts'
import { restartStorm as storm } from '../../scripts/restart-storm.ts'

/**
 * The Workers edge in local workerd (Miniflare): 1,000 EventSource-like clients on one room, 10 events/s, the room's
 * Durable Object reset (a deploy, an eviction). How long until every client is back and holds every event committed
 * before its new stream opened, and that none was lost or duplicated (scripts/restart-storm.ts).
 */
export const restartStorm = async (ctx: Ctx) => {
  ctx.progress('restart storm · 1,000 clients on one Workers room, the room restarted')
  const { summary } = await storm({ clients: 1000 })
  ctx.progress(
    `restart storm · all live again after ${summary.allLiveMs} ms (p50 ${summary.liveMs.p50}, reconnects ${summary.reconnectedMs.first}–${summary.reconnectedMs.last} ms) · lost ${summary.lost} · duplicated ${summary.duplicated} · refused ${summary.failed}`,
  )
  return summary
}
