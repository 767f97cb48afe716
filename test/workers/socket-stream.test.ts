import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { Env } from '../../edge/platform/workers.ts'
import { durableRooms, type RoomNamespace } from '../../edge/room/durable/durable-rooms.ts'
import type { WireEvent } from '../../shared/schema.ts'

const ns = (env as unknown as Env).ROOMS
const subscribers = (tenant: string) => runInDurableObject(ns.get(ns.idFromName(tenant)), (room) => room.subscribers)
const tenant = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`
const ev = (seq: number, data: unknown = { seq }): WireEvent => ({ seq, topic: 't', data: JSON.stringify(data), ts: Date.now() })

const readAll = async (stream: ReadableStream<Uint8Array>) => {
  let text = ''
  const decoder = new TextDecoder()
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true })
  return text
}

/** The Worker side of a subscriber: what the room's WebSocket becomes on the way to the browser. */
describe('Worker-side SSE streams from room sockets', () => {
  it('heartbeats from the Worker, without the room', async () => {
    const t = tenant('hb')
    const stream = await durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 50, SUBSCRIBER_QUEUE_BYTES: 4 << 20 })
      .get(t)
      .connect({ topics: {}, retryMs: 1000 })
    const reader = stream.getReader()
    let text = ''
    while ((text.match(/: hb\n\n/g) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value)
    expect(text.startsWith('retry: 1000\n\n: hb\n\n')).toBe(true)
    await reader.cancel()
  })

  it('drops a browser that does not read, closes its socket, and the room forgets it', async () => {
    const t = tenant('slow')
    const rooms = durableRooms(ns as unknown as RoomNamespace, { HEARTBEAT_MS: 60_000, SUBSCRIBER_QUEUE_BYTES: 4096 })
    const stream = await rooms.get(t).connect({ topics: {}, retryMs: 1000 })
    expect(await subscribers(t)).toBe(1)
    const big = 'x'.repeat(1000)
    for (let seq = 1; seq <= 20; seq++) await rooms.get(t).publish({ tenant: t, events: [ev(seq, { big })] })
    const deadline = Date.now() + 10_000
    while ((await subscribers(t)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await subscribers(t)).toBe(0)
    const text = await readAll(stream) // what was queued, then the end: the client resumes with Last-Event-ID
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect(ids.length).toBeGreaterThan(0)
    expect(ids.length).toBeLessThan(20)
    expect(ids).toEqual(ids.map((_, i) => i + 1)) // a prefix, in order: nothing skipped before the cut
  })
})
