import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRelay, type Relay } from '../../relay/relay.ts'
import { startWranglerDev, type WranglerDev } from '../../scripts/wrangler-dev.ts'
import { launchChromium } from '../support/browser.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'
import { relayConfig, testLog } from '../support/stack.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from '../support/tokens.ts'

/** Postgres → relay → the Worker under `wrangler dev` (real workerd, Durable Object rooms) → an SSE client. */
describe('end to end on the Worker edge', () => {
  const state = mkdtempSync(join(tmpdir(), 'edge-relay-wrangler-'))
  let db: TestDb
  let worker: WranglerDev
  let relay: Relay

  beforeAll(async () => {
    ;[db, worker] = await Promise.all([
      freshDatabase(),
      startWranglerDev({ port: 0, persistTo: state, vars: { EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET }, readyTimeoutMs: 90_000 }),
    ])
    relay = await startRelay({ config: relayConfig(db.url, worker.url), log: testLog })
  }, 120_000)

  afterAll(async () => {
    await relay?.stop()
    await worker?.stop()
    await db?.drop()
    rmSync(state, { recursive: true, force: true })
  })

  const publish = async (tenant: string, topic: string, data: unknown) => {
    const [row] = await db.sql<{ seq: string }[]>`select relay.publish(${tenant}, ${topic}, ${db.sql.json(data as never)}) as seq`
    return Number(row!.seq)
  }

  it('streams a committed event to a subscriber, and resumes with Last-Event-ID', async () => {
    const token = await mintToken({ tenant: 'acme', topics: ['orders'] })
    const stream = await openStream(`${worker.url}/v1/tenants/acme/events?topics=orders&access_token=${token}`)
    expect(stream.status).toBe(200)
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/)

    const seq = await publish('acme', 'orders', { id: 42, status: 'paid' })
    await stream.waitFor((m) => m.some((e) => e.id === String(seq)), 30_000)
    expect(JSON.parse(stream.messages.find((e) => e.id === String(seq))!.data)).toEqual({ id: 42, status: 'paid' })
    stream.close()

    // Published while nobody listens; the Durable Object's stored history serves the resume.
    const missed = [await publish('acme', 'orders', { n: 1 }), await publish('acme', 'orders', { n: 2 })]
    const again = await openStream(`${worker.url}/v1/tenants/acme/events?topics=orders&access_token=${token}`, {
      'last-event-id': String(seq),
    })
    await again.waitFor((m) => m.filter((e) => e.id).length === 2, 30_000)
    expect(again.seqs()).toEqual(missed)
    again.close()
  })

  it('delivers to a real EventSource in Chromium', async () => {
    const browser = await launchChromium()
    try {
      const page = await browser.context.newPage()
      await page.goto(`${worker.url}/healthz`) // same origin as the stream: no CORS involved
      const token = await mintToken({ tenant: 'browser' })
      await page.evaluate((url) => {
        const w = window as unknown as { got: unknown[]; opened: boolean }
        w.got = []
        w.opened = false
        const es = new EventSource(url)
        es.onopen = () => (w.opened = true)
        es.addEventListener('greetings', (e) => w.got.push({ id: e.lastEventId, data: JSON.parse(e.data) }))
      }, `/v1/tenants/browser/events?access_token=${token}`)
      await page.waitForFunction(() => (window as unknown as { opened: boolean }).opened, null, { timeout: 30_000 })
      const seq = await publish('browser', 'greetings', { hello: 'world' })
      await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length > 0, null, { timeout: 30_000 })
      expect(await page.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([
        { id: String(seq), data: { hello: 'world' } },
      ])
    } finally {
      await browser.close()
    }
  })

  it('refuses a token for another tenant with a JSON error', async () => {
    const token = await mintToken({ tenant: 'other' })
    const res = await openStream(`${worker.url}/v1/tenants/acme/events?access_token=${token}`)
    expect(res.status).toBe(403)
    expect(res.body).toMatchObject({ error: { code: 'TENANT_FORBIDDEN' } })
  })
})
