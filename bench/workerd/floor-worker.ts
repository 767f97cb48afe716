/**
 * The floor under any edge on Workers, as a Worker: what the Workers path cannot do without, and nothing else. A relay
 * batch is POSTed to the Worker, which hands its frames by RPC to the tenant's Durable Object; the object sends them on
 * each of its hibernatable WebSockets, one per browser; the Worker that holds a browser's SSE response reads its socket
 * and enqueues each message. No signature, token, history, filter, queue bound, heartbeat or replay. The bench runs the
 * hot workload on it beside ours (bench/workloads/workers.ts), so "close to what workerd can do" reads as ours ÷ floor.
 *
 * `TRANSPORT=stream`: the other design, for comparison (docs/cloudflare.md, "What a connected room costs"): the object
 * serves each browser's SSE response itself and the Worker passes its body through, so the room cannot hibernate while
 * anyone listens.
 */
import { DurableObject } from 'cloudflare:workers'

interface Env {
  ROOMS: DurableObjectNamespace<FloorRoom>
  TRANSPORT?: string
}

const encoder = new TextEncoder()

export class FloorRoom extends DurableObject<Env> {
  private readonly streams = new Set<ReadableStreamDefaultController<Uint8Array>>()

  /** The batch's frames, once, to every socket or stream (as ours writes a batch whole). */
  async publish(frames: string): Promise<void> {
    const bytes = encoder.encode(frames)
    for (const ws of this.ctx.getWebSockets()) ws.send(bytes)
    for (const c of this.streams) c.enqueue(bytes)
  }

  override async fetch(request: Request): Promise<Response> {
    if (!request.headers.get('upgrade')) {
      let me!: ReadableStreamDefaultController<Uint8Array>
      const body = new ReadableStream<Uint8Array>(
        {
          start: (c) => void this.streams.add((me = c)),
          cancel: () => void this.streams.delete(me),
        },
        { highWaterMark: 0 },
      )
      return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store' } })
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
    this.ctx.acceptWebSocket(server)
    return new Response(null, { status: 101, webSocket: client })
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url)
    if (url.pathname === '/healthz') return new Response('ok')
    if (url.pathname === '/internal/hello') return Response.json({ instance: 'floor' })
    if (request.method === 'POST') {
      const body = (await request.json()) as { tenant: string; events: { seq: number; topic: string; data: string }[] }
      const frames = body.events.map((e) => `id: ${e.seq}\nevent: ${e.topic}\ndata: ${e.data}\n\n`).join('')
      await env.ROOMS.get(env.ROOMS.idFromName(body.tenant)).publish(frames)
      const head = body.events.at(-1)?.seq ?? 0
      return Response.json({ tenant: body.tenant, head })
    }
    const tenant = /^\/v1\/tenants\/([^/]+)\//.exec(url.pathname)?.[1] ?? 'floor'
    // Served by the object itself: its response body passes through the Worker untouched.
    if (env.TRANSPORT === 'stream') return env.ROOMS.get(env.ROOMS.idFromName(tenant)).fetch('https://room/')
    const res = await env.ROOMS.get(env.ROOMS.idFromName(tenant)).fetch('https://room/', { headers: { upgrade: 'websocket' } })
    const ws = res.webSocket!
    ws.accept()
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c
        ws.addEventListener('message', ({ data }) => controller.enqueue(new Uint8Array(data as ArrayBuffer)))
        ws.addEventListener('close', () => controller.close())
      },
      cancel: () => ws.close(),
    })
    ws.binaryType = 'arraybuffer'
    return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store' } })
  },
} satisfies ExportedHandler<Env>
