/**
 * The hostile-input table's auth path (test/support/hostile-cases.ts) against the Workers edge in workerd: the same
 * statuses and codes as on Node, while a legitimate subscriber of another tenant keeps receiving. The project binds
 * EDGE_JWT_PUBLIC_KEY (the fixture key) and connection limits of 4 per tenant and 2 per subject (vitest.config.ts).
 */
import { exports } from 'cloudflare:workers'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sign } from '../../shared/sign.ts'
import { createSseParser, type SseMessage } from '../../shared/sse-parse.ts'
import { fixtureKey } from '../support/fixture-key.ts'
import { authCases, outcome } from '../support/hostile-cases.ts'
import { signingKey } from '../support/keys.ts'
import { mintToken, RELAY_SECRET } from '../support/tokens.ts'

const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default
const rsa = await fixtureKey()
const attacker = await signingKey('RS256', rsa.kid) // same kid, different key
const held: Response[] = []
const cases = authCases({
  fetch: (path, init) => worker.fetch(`https://edge${path}`, init),
  rsa,
  attacker,
  perTenant: 4,
  perSubject: 2,
  held,
})

const good = `good-${crypto.randomUUID().slice(0, 8)}`
const received: SseMessage[] = []
let reader: ReadableStreamDefaultReader<Uint8Array>
let seq = 0

const publish = async () => {
  seq++
  const body = JSON.stringify({ tenant: good, events: [{ seq, topic: 't', data: JSON.stringify({ seq }), ts: Date.now() }] })
  const res = await worker.fetch('https://edge/internal/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(RELAY_SECRET, body) },
    body,
  })
  expect(res.status).toBe(200)
  await res.body?.cancel()
}

beforeAll(async () => {
  const res = await worker.fetch(`https://edge/v1/tenants/${good}/events`, {
    headers: { authorization: `Bearer ${await mintToken({ tenant: good })}` },
  })
  expect(res.status).toBe(200)
  reader = res.body!.getReader()
  const feed = createSseParser((m) => received.push(m))
  const decoder = new TextDecoder()
  void (async () => {
    for (;;) {
      const r = await reader.read().catch(() => ({ done: true as const, value: undefined }))
      if (r.done) return
      feed(decoder.decode(r.value, { stream: true }))
    }
  })()
})

afterAll(async () => {
  await Promise.all(held.map((r) => r.body?.cancel()))
  await reader?.cancel().catch(() => {})
})

describe('the auth path on the Workers edge (workerd)', () => {
  it(`runs the auth table (${cases.length} cases)`, () => expect(cases.length).toBeGreaterThanOrEqual(30))

  for (const c of cases)
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      await publish()
      const got = await outcome(await c.run())
      expect(got).toMatchObject({ status: c.status, body: { error: { code: c.code, message: expect.any(String) } } })
      if (c.status === 429) expect(Number(got.retryAfter)).toBeGreaterThan(0)
    })

  it('the legitimate subscriber received every event meanwhile, in order, once', async () => {
    const deadline = Date.now() + 20_000
    while (received.filter((m) => m.id).length < seq && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(received.filter((m) => m.id).map((m) => Number(m.id))).toEqual(Array.from({ length: seq }, (_, i) => i + 1))
  })
})
