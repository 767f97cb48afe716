/**
 * The Worker edge (edge/platform/workers.ts) plus one route that only a test harness serves: `POST /__restart/:tenant`
 * resets that tenant's room, as a deploy or an eviction does (its memory goes, its sockets close, its SQLite stays).
 * scripts/restart-storm.ts bundles this file into local workerd; it is never deployed.
 */
import edge, { type Env, TenantRoom as Room } from '../../edge/platform/workers.ts'

export class TenantRoom extends Room {
  /** Resets this object; the call itself then fails (the object it ran on is gone). */
  async restart(): Promise<void> {
    this.ctx.abort('restarted by the restart-storm harness')
  }
}

export default {
  async fetch(request, env, ctx) {
    const restart = /^\/__restart\/([A-Za-z0-9_-]{1,64})$/.exec(new URL(request.url).pathname)
    if (!restart || request.method !== 'POST') return edge.fetch(request, env, ctx)
    const rooms = env.ROOMS as unknown as DurableObjectNamespace<TenantRoom>
    await rooms
      .get(rooms.idFromName(restart[1]!))
      .restart()
      .catch(() => {})
    return new Response(null, { status: 204 })
  },
} satisfies ExportedHandler<Env>
