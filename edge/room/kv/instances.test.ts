/**
 * Two edge apps (two "instances", as Deno Deploy runs them) on one Deno KV, each with its own handle, in one
 * process: what the relay publishes to one reaches subscribers of the other once and in order, and a resume on
 * either is exact, also from further back than an instance's copy holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WireEvent } from '../../../shared/schema.ts'
import { sign } from '../../../shared/sign.ts'
import { createSseParser, type SseMessage } from '../../../shared/sse-parse.ts'
import { tempKv } from '../../../test/support/kv.ts'
import { edgeSettings } from '../../../test/support/settings.ts'
import { mintToken } from '../../../test/support/tokens.ts'
import { createEdge, type Edge } from '../../create.ts'
import { type KvRooms, kvRooms } from './kv-rooms.ts'

// A copy in memory holds about 60 of these 1 KiB events (HISTORY_MAX_BYTES); KV holds all of them.
const settings = edgeSettings({ HISTORY_MAX_BYTES: '65536' })
const PAD = 'x'.repeat(1000)
const ev = (seq: number): WireEvent => ({ seq, topic: seq % 3 === 0 ? 'b' : 'a', data: JSON.stringify({ seq, pad: PAD }), ts: Date.now() })
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const db = tempKv()
const instances: { rooms: KvRooms; app: Edge }[] = []
const quiet = () => {}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const rooms = await kvRooms(await db.open(), settings, { log: quiet })
    instances.push({ rooms, app: await createEdge(settings, { rooms, log: quiet }) })
  }
})
afterAll(() => {
  for (const { rooms } of instances) rooms.close()
  db.close()
})

const publish = async (app: Edge, tenant: string, events: WireEvent[]) => {
  const body = JSON.stringify({ tenant, events, nonce: crypto.randomUUID() })
  const res = await app.request('/internal/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(settings.RELAY_SECRET, body) },
    body,
  })
  expect(res.status).toBe(200)
  return (await res.json()) as { head: number }
}

/** A stream from `app`, read in the background. */
const subscribe = async (app: Edge, tenant: string, opts: { lastEventId?: number; topics?: string } = {}) => {
  const headers: Record<string, string> = { authorization: `Bearer ${await mintToken({ tenant })}` }
  if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId)
  const res = await app.request(`/v1/tenants/${tenant}/events${opts.topics ? `?topics=${opts.topics}` : ''}`, { headers })
  expect(res.status).toBe(200)
  const messages: SseMessage[] = []
  const feed = createSseParser((m) => messages.push(m))
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      feed(decoder.decode(value, { stream: true }))
    }
  })()
  const seqs = () => messages.filter((m) => m.id !== undefined).map((m) => Number(m.id))
  return {
    messages,
    seqs,
    async until(n: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      while (seqs().length < n) {
        if (Date.now() > deadline) throw new Error(`timed out at ${seqs().length} of ${n} events: ${seqs().join()}`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    cancel: () => reader.cancel().catch(() => {}),
  }
}

describe('KV rooms: two instances on one KV', () => {
  it('answer POST /internal/hello with the same instance', () => {
    expect(instances[0]!.rooms.instance).toMatch(/^kv-/)
    expect(instances[1]!.rooms.instance).toBe(instances[0]!.rooms.instance)
  })

  it('deliver what is published to one to the subscribers of both, once, in order, and resume exactly on either', async () => {
    const [a, b] = [instances[0]!.app, instances[1]!.app]
    const t = 'two-instances'
    const liveB = await subscribe(b, t)
    const fromZeroB = await subscribe(b, t, { lastEventId: 0 })
    const onlyB = await subscribe(b, t, { topics: 'b' })
    const liveA = await subscribe(a, t)
    // The relay's way: batches in order, one in flight, some resent after a lost reply.
    for (let from = 1; from <= 150; from += 10) {
      expect((await publish(a, t, range(from, from + 9).map(ev))).head).toBe(from + 9)
      if (from % 30 === 1) expect((await publish(a, t, range(Math.max(1, from - 5), from + 9).map(ev))).head).toBe(from + 9)
    }
    for (const s of [liveB, fromZeroB, liveA]) await s.until(150)
    await onlyB.until(50)
    for (const s of [liveB, fromZeroB, liveA]) expect(s.seqs()).toEqual(range(1, 150))
    expect(onlyB.seqs()).toEqual(range(1, 150).filter((s) => s % 3 === 0))

    // Each copy holds ~60 of these; a resume from further back is replayed from KV first, on either instance.
    expect(instances[1]!.rooms.mirrors.get(t)!.room.first).toBeGreaterThan(40)
    const resumes = [
      await subscribe(b, t, { lastEventId: 0 }),
      await subscribe(a, t, { lastEventId: 37 }),
      await subscribe(b, t, { lastEventId: 120 }),
    ]
    // Publishing goes on while they replay, now through B.
    for (let from = 151; from <= 200; from += 10) await publish(b, t, range(from, from + 9).map(ev))
    await Promise.all(resumes.map((s) => s.until(s === resumes[0] ? 200 : s === resumes[1] ? 163 : 80)))
    expect(resumes[0]!.seqs()).toEqual(range(1, 200))
    expect(resumes[1]!.seqs()).toEqual(range(38, 200))
    expect(resumes[2]!.seqs()).toEqual(range(121, 200))
    for (const s of [liveB, fromZeroB, liveA]) await s.until(200)
    for (const s of [liveB, fromZeroB, liveA]) expect(s.seqs()).toEqual(range(1, 200))
    await Promise.all([liveB, fromZeroB, onlyB, liveA, ...resumes].map((s) => s.cancel()))
  }, 30_000)

  it('tell a subscriber of the other instance to reset when a rebase skips what it had not seen', async () => {
    const [a, b] = [instances[0]!.app, instances[1]!.app]
    const t = 'two-rebase'
    await publish(a, t, range(1, 3).map(ev))
    const s = await subscribe(b, t, { lastEventId: 0 })
    await s.until(3)
    const body = { tenant: t, events: range(8, 9).map(ev), rebase: true }
    const raw = JSON.stringify(body)
    const res = await a.request('/internal/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(settings.RELAY_SECRET, raw) },
      body: raw,
    })
    expect(await res.json()).toEqual({ tenant: t, head: 9 })
    await s.until(5)
    expect(s.seqs()).toEqual([1, 2, 3, 8, 9])
    expect(s.messages[3]).toEqual({ event: 'reset', data: JSON.stringify({ head: 7, first: 8 }) })
    const late = await subscribe(a, t, { lastEventId: 5 })
    const deadline = Date.now() + 5000
    while (late.messages.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(late.messages[0]?.event).toBe('reset')
    await Promise.all([s.cancel(), late.cancel()])
  })
})
