import { request, type IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { PATHS } from '../../shared/protocol.ts'
import { sign } from '../../shared/sign.ts'
import { afterRetry } from '../../test/support/retry.ts'
import { edgeSettings } from '../../test/support/settings.ts'
import { mintToken, RELAY_SECRET } from '../../test/support/tokens.ts'
import { startNodeEdge, type NodeEdge, type NodeEdgeOptions } from './node.ts'
import { observeFlushes } from './node-sse.ts'

/** The Node fast path (node-sse.ts) against a real server and raw node:http clients: exact bytes on the wire. */

let edge: NodeEdge | undefined
afterEach(async () => {
  await edge?.close()
  edge = undefined
})

const start = async (options: NodeEdgeOptions = {}, env: Record<string, string> = {}) =>
  (edge = await startNodeEdge(edgeSettings(env), '127.0.0.1', options))

const publish = async (tenant: string, events: { seq: number; topic: string; data: unknown }[]) => {
  const body = JSON.stringify({ tenant, events: events.map((e) => ({ ...e, data: JSON.stringify(e.data), ts: 0 })) })
  const res = await fetch(edge!.url + PATHS.publish, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(RELAY_SECRET, body) },
    body,
  })
  expect(res.status).toBe(200)
  return res.json()
}

interface RawStream {
  res: IncomingMessage
  /** Every body chunk as the client's HTTP parser delivered it. */
  chunks: string[]
  text: () => string
  until: (pred: () => boolean, timeoutMs?: number) => Promise<void>
  ended: Promise<void>
}

const open = async (tenant: string, token?: string, extra: Record<string, string> = {}): Promise<RawStream> => {
  token ??= await mintToken({ tenant })
  return new Promise((resolve, reject) => {
    const req = request(`${edge!.url}/v1/tenants/${tenant}/events`, {
      headers: { authorization: `Bearer ${token}`, ...extra },
      agent: false,
    })
    req.on('error', reject)
    req.on('response', (res) => {
      const chunks: string[] = []
      const ended = new Promise<void>((done) => (res.on('end', done), res.on('close', done), res.on('error', () => done())))
      res.setEncoding('utf8')
      res.on('data', (c: string) => chunks.push(c))
      const until = (pred: () => boolean, timeoutMs = 10_000) =>
        new Promise<void>((ok, fail) => {
          const t0 = Date.now()
          const poll = () =>
            pred()
              ? ok()
              : Date.now() - t0 > timeoutMs
                ? fail(new Error(`timed out; got ${JSON.stringify(chunks.join('').slice(-300))}`))
                : setTimeout(poll, 5)
          poll()
        })
      resolve({ res, chunks, text: () => chunks.join(''), until, ended })
    })
    req.end()
  })
}

const roomSize = (tenant: string) => edge!.rooms.rooms.get(tenant)?.size ?? 0

describe('Node fast path (bytes straight to the socket)', () => {
  it('sends the exact SSE bytes and headers', async () => {
    await start()
    const s = await open('acme')
    expect(s.res.statusCode).toBe(200)
    expect(s.res.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(s.res.headers['cache-control']).toBe('no-cache, no-transform')
    await s.until(() => s.text().length > 0)
    await publish('acme', [{ seq: 1, topic: 'orders', data: { id: 1, note: 'é' } }])
    await s.until(() => s.text().includes('id: 1\n'))
    expect(afterRetry(s.text())).toBe('id: 1\nevent: orders\ndata: {"id":1,"note":"é"}\n\n')
  })

  it('coalesces the frames due in one turn into one write per client', async () => {
    await start()
    const a = await open('acme')
    const b = await open('acme')
    await a.until(() => a.chunks.length === 1)
    await b.until(() => b.chunks.length === 1)
    const events = [1, 2, 3, 4, 5].map((seq) => ({ seq, topic: 't', data: { seq } }))
    await publish('acme', events)
    const expected = events.map((e) => `id: ${e.seq}\nevent: t\ndata: {"seq":${e.seq}}\n\n`).join('')
    for (const s of [a, b]) {
      await s.until(() => s.text().endsWith('id: 5\nevent: t\ndata: {"seq":5}\n\n'))
      // One HTTP chunk after the retry: frame holds all five frames.
      expect(s.chunks).toHaveLength(2)
      expect(afterRetry(s.chunks[0]!)).toBe('')
      expect(s.chunks[1]).toBe(expected)
    }
  })

  it('tells flush observers how many subscribers each turn wrote to (the fan-out span metric)', async () => {
    await start()
    const streams = await Promise.all([1, 2, 3].map(() => open('acme')))
    for (const s of streams) await s.until(() => s.chunks.length === 1)
    const flushCount = async () =>
      Number(/^edge_relay_edge_flush_seconds_count (\d+)$/m.exec(await (await fetch(`${edge!.url}${PATHS.metrics}`)).text())?.[1])
    const before = await flushCount()
    const seen: [number, number][] = []
    const stop = observeFlushes((subscribers, ms) => seen.push([subscribers, ms]))
    try {
      await publish(
        'acme',
        [1, 2].map((seq) => ({ seq, topic: 't', data: { seq } })),
      )
      for (const s of streams) await s.until(() => s.text().includes('id: 2\n'))
    } finally {
      stop()
    }
    // One batch of two events: one flush, to all three subscribers.
    expect(seen).toHaveLength(1)
    expect(seen[0]![0]).toBe(3)
    expect(seen[0]![1]).toBeGreaterThanOrEqual(0)
    expect(await flushCount()).toBe(before + 1)
  })

  it('drops a subscriber that stops reading once its unsent bytes pass the bound, and only that one', async () => {
    await start({}, { SUBSCRIBER_QUEUE_BYTES: String(256 * 1024) })
    const slow = await open('acme')
    const fast = await open('acme')
    await slow.until(() => slow.chunks.length === 1)
    slow.res.pause() // stop reading: the kernel buffers fill, then Node's, then ours
    slow.res.socket.pause()
    // Batches well under the bound, so a reader that keeps up is never near it; the paused one falls behind.
    const big = 'x'.repeat(16 * 1024)
    let seq = 0
    for (let batch = 0; batch < 1000 && roomSize('acme') === 2; batch++) {
      await publish(
        'acme',
        Array.from({ length: 8 }, () => ({ seq: ++seq, topic: 't', data: big })),
      )
      await fast.until(() => fast.text().endsWith(`"\n\n`) && fast.text().includes(`id: ${seq}\n`))
    }
    expect(roomSize('acme')).toBe(1)
    expect(edge!.rooms.room('acme').slowDropped).toBe(1)
    await fast.until(() => fast.text().includes(`id: ${seq}\n`))
    slow.res.resume()
    slow.res.socket.resume()
    await slow.ended // the server cut it; the client would reconnect with Last-Event-ID
  })

  it('unsubscribes when the client disconnects', async () => {
    await start()
    const s = await open('acme')
    await s.until(() => roomSize('acme') === 1)
    s.res.destroy()
    await s.until(() => roomSize('acme') === 0)
    // Publishing after the client left writes to nobody and does not throw.
    await publish('acme', [{ seq: 1, topic: 't', data: 1 }])
    expect(roomSize('acme')).toBe(0)
  })

  it('sends heartbeats and ends with event: reauth when the token expires', async () => {
    await start({}, { HEARTBEAT_MS: '1000' })
    const token = await mintToken({ tenant: 'acme' }, { expiresIn: Math.floor(Date.now() / 1000) + 2 })
    const s = await open('acme', token)
    await s.ended
    expect(s.text()).toContain(': hb\n\n')
    expect(s.text().endsWith('event: reauth\ndata: {"reason":"token expired"}\n\n')).toBe(true)
    expect(s.res.complete).toBe(true) // the chunked body ended with its terminating chunk, not a cut connection
    expect(roomSize('acme')).toBe(0)
  })

  it('sends the headers middleware set around the handler (CORS)', async () => {
    await start({}, { EDGE_CORS_ORIGINS: 'https://app.example.com' })
    const s = await open('acme', undefined, { origin: 'https://app.example.com' })
    expect(s.res.headers['access-control-allow-origin']).toBe('https://app.example.com')
    expect(s.res.headers.vary).toMatch(/origin/i)
    expect(s.res.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(s.res.headers['x-hono-already-sent']).toBeUndefined()
  })

  it('still answers errors as JSON through Hono', async () => {
    await start()
    const res = await fetch(`${edge!.url}/v1/tenants/acme/events`)
    expect(res.status).toBe(401)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBeTypeOf('string')
  })
})
