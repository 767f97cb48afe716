import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../support/browser.ts'
import { startDevStack, type DevStack } from '../support/dev-stack.ts'
import { mintToken } from '../support/tokens.ts'

let s: DevStack
let short: DevStack
let browser: Awaited<ReturnType<typeof launchChromium>>

beforeAll(async () => {
  ;[s, short] = await Promise.all([startDevStack(), startDevStack({ HISTORY_LIMIT: '5' })])
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all([s?.stop(), short?.stop()])
})

interface Log {
  events: number[]
  statuses: string[]
  resets: unknown[]
  tokens: number
  eventSources: number
}

/**
 * Runs in the page as a module (a string, so the test runner does not rewrite its dynamic import): loads
 * shared/client.ts as the development route serves it, and records what the client reports.
 */
const HARNESS = `
const o = window.options
const log = (window.log = { events: [], statuses: [], resets: [], tokens: 0, eventSources: 0 })
// Count native EventSource connections, to know which transport ran.
const Native = window.EventSource
window.EventSource = class extends Native {
  constructor(url, init) {
    super(url, init)
    log.eventSources++
  }
}
const { connect } = await import('/dev/src/shared/client.js')
window.client = connect({
  url: location.origin,
  tenant: o.tenant,
  ...(o.topics ? { topics: o.topics } : {}),
  ...(o.after !== undefined ? { after: o.after } : {}),
  getToken: async () => (log.tokens++, window.mint(o.tenant, o.ttl ?? '1h')),
  onEvent: (e) => log.events.push(e.seq),
  onStatus: (st) => log.statuses.push(st),
  onReset: (r) => log.resets.push(r),
})
`

/**
 * Opens a page on the edge's origin and starts shared/client.ts in it (served by the development route, the same
 * module an app bundles). Tokens come from the test process, `ttl` long.
 */
const startClient = async (stack: DevStack, o: { tenant: string; topics?: string[]; after?: number; ttl?: string }) => {
  const page: Page = await browser.context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await page.exposeFunction('mint', (tenant: string, ttl: string) => mintToken({ tenant }, { expiresIn: ttl }))
  await page.goto(`${stack.url}/healthz`)
  await page.evaluate((o) => ((window as unknown as { options: unknown }).options = o), o)
  await page.addScriptTag({ type: 'module', content: HARNESS })
  await page.waitForFunction('window.client !== undefined')
  return {
    page,
    errors,
    log: () => page.evaluate(() => (window as unknown as { log: Log }).log),
    until: (pred: string, timeout = 30_000) => page.waitForFunction(pred, undefined, { timeout }),
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('shared/client.ts in Chromium', () => {
  it('EventSource transport: resumes across a forced reconnect without a gap or a duplicate', async () => {
    const c = await startClient(s, { tenant: 'res', topics: ['a', 'b'] })
    await c.until('window.log.statuses.at(-1) === "live"')
    for (let i = 1; i <= 5; i++) await s.publish('res', i % 2 ? 'a' : 'b', { i })
    await c.until('window.log.events.length === 5')
    s.edge.rooms.room('res').closeAll() // the server drops every stream of the room
    for (let i = 6; i <= 10; i++) await s.publish('res', i % 2 ? 'a' : 'b', { i })
    await c.until('window.log.events.length >= 10')
    await new Promise((r) => setTimeout(r, 300)) // room for a duplicate to show up, if there were one
    const log = await c.log()
    expect(log.events).toEqual(range(1, 10))
    expect(log.resets).toEqual([])
    expect(log.statuses).toEqual(['connecting', 'live', 'reconnecting', 'live'])
    expect(log.eventSources).toBe(2)
    expect(log.tokens).toBe(2) // a fresh token for the reconnect
    expect(c.errors).toEqual([])
    await c.page.close()
  })

  it('fetch transport (every topic): renews an expiring token on `reauth` and resumes without a gap', async () => {
    const c = await startClient(s, { tenant: 'reauth', ttl: '2s' })
    await c.until('window.log.statuses.at(-1) === "live"')
    const until = Date.now() + 6_000
    let n = 0
    while (Date.now() < until) {
      await s.publish('reauth', `t${n % 3}`, { n })
      n++
      await new Promise((r) => setTimeout(r, 100))
    }
    await c.until(`window.log.events.length >= ${n}`)
    const log = await c.log()
    expect(log.events).toEqual(range(1, n))
    expect(log.resets).toEqual([]) // gap detection is on for an every-topic stream, and found none
    expect(log.eventSources).toBe(0)
    expect(log.tokens).toBeGreaterThanOrEqual(3) // the first token and at least two renewals
    expect(c.errors).toEqual([])
    await c.page.close()
  })

  it('calls onReset when resuming from a seq older than the room holds, then goes on live', async () => {
    for (let i = 1; i <= 20; i++) await short.publish('old', 't', { i })
    const deadline = Date.now() + 30_000
    while (short.edge.rooms.room('old').head < 20) {
      if (Date.now() > deadline) throw new Error('the room never reached seq 20')
      await new Promise((r) => setTimeout(r, 50))
    }
    const c = await startClient(short, { tenant: 'old', after: 2 })
    await c.until('window.log.resets.length === 1')
    await short.publish('old', 't', { i: 21 })
    await c.until('window.log.events.length === 1')
    const log = await c.log()
    expect(log.resets).toEqual([{ reason: 'reset', head: 20 }])
    expect(log.events).toEqual([21])
    await c.page.close()
  })
})
