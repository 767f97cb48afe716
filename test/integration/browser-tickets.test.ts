/**
 * The README's browser flow in real Chromium, cross-origin: the page gets a short-lived app token from its own
 * server, trades it for a ticket at the edge (CORS preflight), opens an EventSource with the ticket, and on
 * `event: reauth` does it again and resumes from the last id. Every event of its topic arrives once, in order.
 */
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

const page = (edge: string) => `<!doctype html><meta charset="utf-8"><title>tickets</title><script>
const EDGE = ${JSON.stringify(edge)}
window.got = []; window.reauths = 0; window.opened = false
let lastId = ''
async function connect() {
  const appToken = await (await fetch('/token')).text()
  const res = await fetch(EDGE + '/v1/tickets', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + appToken, 'content-type': 'application/json' },
    body: JSON.stringify({ topics: ['orders'] }),
  })
  const { ticket } = await res.json()
  const q = new URLSearchParams({ access_token: ticket, ...(lastId ? { last_event_id: lastId } : {}) })
  const es = new EventSource(EDGE + '/v1/tenants/web/events?' + q)
  es.onopen = () => { window.opened = true }
  es.addEventListener('orders', (e) => { lastId = e.lastEventId; window.got.push(Number(e.lastEventId)) })
  es.addEventListener('users', () => window.got.push(-1))
  es.addEventListener('reauth', () => { window.reauths++; es.close(); connect() })
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) setTimeout(connect, 500) }
}
connect()
</script>`

let s: Stack
let app: Server
let appUrl = ''
let browser: Browser | undefined

beforeAll(async () => {
  const executablePath = '/usr/bin/chromium'
  if (!existsSync(executablePath)) throw new Error('Chromium is required for this test: apt-get install -y chromium')
  let edgeUrl = ''
  // The app's own server: its page, and app tokens that expire in 3 s so that streams reauth during the test.
  app = createServer(async (req, res) => {
    if (req.url === '/token') {
      const token = await mintToken(
        { tenant: 'web', sub: 'browser-user', topics: ['orders', 'users'] },
        { expiresIn: Math.floor(Date.now() / 1000) + 3 },
      )
      return res.writeHead(200, { 'content-type': 'text/plain' }).end(token)
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(page(edgeUrl))
  })
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`
  s = await startStack({ edge: { EDGE_CORS_ORIGINS: appUrl, EDGE_QUERY_TOKENS: 'ticket' } })
  edgeUrl = s.edge.url
  browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
})

afterAll(async () => {
  await browser?.close()
  await s?.stop()
  await new Promise<void>((r) => (app ? (app.closeAllConnections(), app.close(() => r())) : r()))
})

describe('tickets in a real browser', () => {
  it('EventSource with tickets across origins: reauth, new ticket, resume — no gap, no duplicate, no other topic', async () => {
    const tab = await browser!.newPage()
    await tab.goto(appUrl)
    await tab.waitForFunction(() => (window as unknown as { opened: boolean }).opened, null, { timeout: 30_000 })
    const orders: number[] = []
    const until = Date.now() + 7_000 // spans at least one token expiry (3 s tokens)
    for (let i = 0; Date.now() < until; i++) {
      const topic = i % 3 === 2 ? 'users' : 'orders'
      const seq = await s.publish('web', topic, { at: Date.now() })
      if (topic === 'orders') orders.push(seq)
      await new Promise((r) => setTimeout(r, 100))
    }
    await tab.waitForFunction((n) => (window as unknown as { got: number[] }).got.length >= n, orders.length, { timeout: 30_000 })
    const { got, reauths } = await tab.evaluate(() => {
      const w = window as unknown as { got: number[]; reauths: number }
      return { got: w.got, reauths: w.reauths }
    })
    expect(reauths).toBeGreaterThanOrEqual(1)
    expect(got).toEqual(orders)
  })
})
