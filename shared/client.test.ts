import { createServer, type ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { connect, retryDelay, type ResetInfo, type Status } from './client.ts'

/** A scripted EventSource: the test plays the server. */
class FakeEventSource {
  static made: FakeEventSource[] = []
  onopen: (() => void) | null = null
  onerror: (() => void) | null = null
  closed = false
  private listeners = new Map<string, ((e: { data: string; lastEventId: string }) => void)[]>()
  private lastId = ''
  constructor(readonly url: string) {
    FakeEventSource.made.push(this)
  }
  addEventListener(name: string, fn: (e: { data: string; lastEventId: string }) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), fn])
  }
  close() {
    this.closed = true
  }
  emit(name: string, data: unknown, id?: number) {
    if (id !== undefined) this.lastId = String(id) // as browsers do: the last id sticks to later events
    for (const fn of this.listeners.get(name) ?? []) fn({ data: JSON.stringify(data), lastEventId: this.lastId })
  }
}

const tick = () => new Promise((r) => setTimeout(r, 5))

const start = (o: Partial<Parameters<typeof connect>[0]> = {}) => {
  FakeEventSource.made = []
  const seen: number[] = []
  const resets: ResetInfo[] = []
  const statuses: Status[] = []
  let tokens = 0
  const client = connect({
    url: 'http://edge.test',
    tenant: 'acme',
    topics: ['a'],
    getToken: () => `token-${++tokens}`,
    onEvent: (e) => seen.push(e.seq),
    onReset: (r) => resets.push(r),
    onStatus: (s) => statuses.push(s),
    EventSource: FakeEventSource as unknown as typeof EventSource,
    ...o,
  })
  return { client, seen, resets, statuses, es: () => FakeEventSource.made.at(-1)! }
}

describe('browser client state machine', () => {
  it('hands an oversize marker to onUndeliverable (never to onEvent) and counts its seq, so no gap is reported', async () => {
    const undeliverable: unknown[] = []
    const t = start({ detectGaps: true, onUndeliverable: (e) => undeliverable.push(e) })
    await tick()
    t.es().onopen!()
    t.es().emit('a', {}, 1)
    t.es().emit('oversize', { topic: 'a', bytes: 2_000_000, reason: 'event 2 is over 1048576 bytes' }, 2)
    t.es().emit('a', {}, 3)
    expect(t.seen).toEqual([1, 3])
    expect(undeliverable).toEqual([{ seq: 2, topic: 'a', bytes: 2_000_000, reason: 'event 2 is over 1048576 bytes' }])
    expect(t.resets).toEqual([])
    t.client.close()
  })

  it('drops duplicates, reports a seq jump as a gap when asked to, and reconnects after reauth with a fresh token', async () => {
    const t = start({ detectGaps: true })
    await tick()
    expect(t.es().url).toBe('http://edge.test/v1/tenants/acme/events?topics=a&access_token=token-1')
    t.es().onopen!()
    t.es().emit('a', {}, 1)
    t.es().emit('a', {}, 2)
    t.es().emit('a', {}, 2)
    t.es().emit('a', {}, 5)
    expect(t.seen).toEqual([1, 2, 5])
    expect(t.resets).toEqual([{ reason: 'gap', expected: 3, got: 5 }])
    t.es().emit('reauth', { reason: 'token expired' }) // a control event: its sticky lastEventId must be ignored
    const old = t.es()
    await tick()
    expect(old.closed).toBe(true)
    expect(t.es().url).toBe('http://edge.test/v1/tenants/acme/events?topics=a&last_event_id=5&access_token=token-2')
    t.es().onopen!()
    expect(t.statuses).toEqual(['connecting', 'live', 'reconnecting', 'live'])
    expect(t.client.lastSeq).toBe(5)
    t.client.close()
    expect(t.es().closed).toBe(true)
    expect(t.client.status).toBe('closed')
  })

  it('a reset moves the resume point to the head and calls onReset; a listed-topics stream does not detect gaps by default', async () => {
    const t = start()
    await tick()
    t.es().onopen!()
    t.es().emit('a', {}, 3)
    t.es().emit('a', {}, 9) // other topics' seqs lie between: not a gap
    t.es().emit('reset', { head: 40, first: 30 })
    t.es().emit('a', {}, 41)
    expect(t.seen).toEqual([3, 9, 41])
    expect(t.resets).toEqual([{ reason: 'reset', head: 40 }])
    t.es().onerror!()
    await new Promise((r) => setTimeout(r, 300)) // first retry waits 125–250 ms
    expect(t.es().url).toContain('last_event_id=41')
    t.client.close()
  })

  it('backs off from 125–250 ms to the cap', () => {
    expect(retryDelay(1, 15_000, () => 0)).toBe(125)
    expect(retryDelay(1, 15_000, () => 1)).toBe(250)
    expect(retryDelay(20, 15_000, () => 1)).toBe(15_000)
  })

  it('fetch transport: a stream that goes silent (no heartbeat) is dropped and resumed', async () => {
    const requests: string[] = []
    const open: ServerResponse[] = []
    const server = createServer((req, res) => {
      requests.push(req.url ?? '')
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(requests.length === 1 ? 'retry: 1000\n\nid: 7\nevent: t\ndata: {}\n\n' : 'retry: 1000\n\n')
      open.push(res) // then silence, as from a peer that vanished
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as { port: number }
    const statuses: Status[] = []
    const client = connect({
      url: `http://127.0.0.1:${port}`,
      tenant: 'acme',
      getToken: () => 'x',
      staleMs: 300,
      onStatus: (st) => statuses.push(st),
    })
    const deadline = Date.now() + 10_000
    while (requests.length < 2 && Date.now() < deadline) await tick()
    client.close()
    for (const res of open) res.destroy()
    await new Promise((r) => server.close(r))
    expect(requests[1]).toContain('last_event_id=7')
    expect(statuses.slice(0, 3)).toEqual(['connecting', 'live', 'reconnecting'])
  })
})
