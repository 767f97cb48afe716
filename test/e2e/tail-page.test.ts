import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from '../support/browser.ts'
import { startDevStack, type DevStack } from '../support/dev-stack.ts'
import { mintToken } from '../support/tokens.ts'

const ARTIFACTS = resolve(import.meta.dirname, '../../test-results/e2e')

let s: DevStack
let browser: Awaited<ReturnType<typeof launchChromium>>
let page: Page
const pageErrors: string[] = []

beforeAll(async () => {
  s = await startDevStack()
  browser = await launchChromium()
  page = await browser.context.newPage()
  page.on('pageerror', (e) => pageErrors.push(e.message))
})
afterAll(async () => {
  await browser?.close()
  await s?.stop()
})

/** Seq and topic of the rows on screen, top to bottom (newest first). */
const rows = (visibleOnly = true) =>
  page.$$eval(
    '#events > li',
    (lis, visibleOnly) =>
      lis
        .filter((li) => !visibleOnly || !(li as HTMLElement).hidden)
        .map((li) => [Number((li as HTMLElement).dataset.seq), (li as HTMLElement).dataset.topic]),
    visibleOnly,
  )
const status = () => page.getAttribute('#status', 'data-status')
/** Seqs of the rows marked replayed, top to bottom. */
const replayed = (p: Page = page) =>
  p.$$eval('#events > li[data-replayed]', (lis) => lis.map((li) => Number((li as HTMLElement).dataset.seq)))
const desc = (to: number, from = 1) => Array.from({ length: to - from + 1 }, (_, i) => to - i)

describe('the live-tail page in Chromium', () => {
  it('connects and shows events published in Postgres, newest first, with topic, seq, time and JSON', async () => {
    const token = await mintToken({ tenant: 'demo' })
    await page.goto(`${s.url}/?tenant=demo#token=${token}`)
    await page.waitForSelector('#status[data-status="live"]')
    for (let i = 1; i <= 6; i++) await s.publish('demo', i % 2 ? 'orders' : 'users', { i, note: `event ${i}` })
    await page.waitForFunction(() => document.querySelectorAll('#events > li').length === 6)
    expect(await rows()).toEqual(desc(6).map((seq) => [seq, seq % 2 ? 'orders' : 'users']))
    const first = page.locator('#events > li').first()
    expect(await first.locator('.seq').textContent()).toBe('#6')
    expect(await first.locator('time').textContent()).toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/)
    expect(JSON.parse((await first.locator('pre.json').textContent())!)).toEqual({ i: 6, note: 'event 6' })
    expect(await page.textContent('#last-seq')).toBe('6')
  })

  it('filters by topic (exact and prefix*) without losing rows', async () => {
    await page.fill('#filter', 'orders')
    expect(await rows()).toEqual([
      [5, 'orders'],
      [3, 'orders'],
      [1, 'orders'],
    ])
    await page.fill('#filter', 'use*')
    expect((await rows()).map(([seq]) => seq)).toEqual([6, 4, 2])
    await page.fill('#filter', '')
    expect((await rows()).map(([seq]) => seq)).toEqual(desc(6))
  })

  it('says a filter is invalid instead of emptying the list, and keeps the last valid one', async () => {
    await page.fill('#filter', 'users')
    expect((await rows()).map(([seq]) => seq)).toEqual([6, 4, 2])
    await page.fill('#filter', 'orders users, a*b')
    await page.waitForSelector('#filter-error:not([hidden])')
    expect(await page.textContent('#filter-error')).toBe(
      'Invalid filter: "orders users", "a*b" are not a topic or prefix* (letters, digits, _ . : -; separate topics with commas). Showing the last valid filter.',
    )
    expect(await page.getAttribute('#filter', 'aria-invalid')).toBe('true')
    expect((await rows()).map(([seq]) => seq)).toEqual([6, 4, 2])
    await page.fill('#filter', '')
    expect(await page.isHidden('#filter-error')).toBe(true)
    expect((await rows()).map(([seq]) => seq)).toEqual(desc(6))
  })

  it('pause keeps buffering; resume shows what arrived meanwhile', async () => {
    await page.click('#pause')
    await s.publish('demo', 'orders', { i: 7 })
    await s.publish('demo', 'users', { i: 8 })
    await page.waitForFunction(() => document.querySelector('#pending')?.textContent?.startsWith('2 new'))
    expect((await rows()).length).toBe(6)
    await page.click('#pause')
    expect((await rows()).map(([seq]) => seq)).toEqual(desc(8))
  })

  it('shows reconnecting while the edge restarts and live after, with no missed seq', async () => {
    const seen = new Set<string>()
    const watch = setInterval(
      () =>
        void status()
          .then((st) => st && seen.add(st))
          .catch(() => {}),
      25,
    )
    await s.restartEdge(async () => {
      await page.waitForSelector('#status[data-status="reconnecting"]')
      // Counts are only true while connected: no stale numbers while the edge is down.
      expect(await page.textContent('#presence')).toBe('not connected (reconnecting)')
      mkdirSync(ARTIFACTS, { recursive: true })
      await page.screenshot({ path: resolve(ARTIFACTS, 'tail-page-reconnecting.png'), clip: { x: 0, y: 0, width: 1440, height: 120 } })
      // Committed while no edge is up: the relay keeps them and the page must get every one.
      for (let i = 9; i <= 11; i++) await s.publish('demo', 'orders', { i })
    })
    await page.waitForSelector('#status[data-status="live"]', { timeout: 30_000 })
    await page.waitForFunction(() => document.querySelectorAll('#events > li').length === 11, undefined, { timeout: 30_000 })
    clearInterval(watch)
    expect(seen).toContain('reconnecting')
    expect((await rows(false)).map(([seq]) => seq)).toEqual(desc(11))
    expect(await page.isHidden('#notice')).toBe(true) // no reset, no gap
    // Committed while the page was away, received in the replay after it reconnected: marked as such.
    expect(await replayed()).toEqual([11, 10, 9])
    await page.waitForFunction(() => document.querySelector('#presence')?.textContent?.includes('all topics'))
  })

  it('publishes a test event from the form (development route) and shows it', async () => {
    await page.waitForSelector('#publish-button:not([disabled])')
    await page.fill('#topic', 'greetings')
    await page.fill('#data', '{"hello": "from the form", "nested": {"ok": true, "n": [1, 2, 3]}}')
    await page.click('#publish-button')
    await page.waitForSelector('#publish-result.ok')
    expect(await page.textContent('#publish-result')).toBe('committed as seq 12')
    await page.waitForFunction(() => (document.querySelector('#events > li') as HTMLElement | null)?.dataset.seq === '12')
    expect((await rows())[0]).toEqual([12, 'greetings'])
    expect(await page.textContent('#presence')).toContain('all topics')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: resolve(ARTIFACTS, 'tail-page.png') })
    expect(pageErrors).toEqual([])
  })

  it('keeps a bounded list: ?max=5 with a replay of everything (&from=0) shows the newest five', async () => {
    const token = await mintToken({ tenant: 'demo' })
    const small = await browser.context.newPage()
    await small.goto(`${s.url}/?tenant=demo&max=5&from=0#token=${token}`)
    await small.waitForFunction(() => document.querySelector('#last-seq')?.textContent === '12')
    expect(await small.textContent('#count')).toBe('12')
    expect(await small.$$eval('#events > li', (lis) => lis.map((li) => Number((li as HTMLElement).dataset.seq)))).toEqual(desc(12, 8))
    // A replay shows when each event arrived, and says it was replayed; a live event afterwards is not marked.
    expect(await replayed(small)).toEqual(desc(12, 8))
    expect(await small.locator('#events > li .replayed').first().textContent()).toBe('replayed')
    await s.publish('demo', 'orders', { i: 13 })
    await small.waitForFunction(() => document.querySelector('#last-seq')?.textContent === '13')
    expect(await replayed(small)).toEqual(desc(12, 9))
    await small.close()
  })

  it('a refused token (401) stops and says why, instead of reconnecting forever', async () => {
    const bad = await mintToken({ tenant: 'demo' }, { secret: 'not-the-edge-secret-at-all-0123456789' })
    const p = await browser.context.newPage()
    const statuses: string[] = []
    await p.exposeFunction('recordStatus', (st: string) => void statuses.push(st))
    await p.addInitScript(() => {
      new MutationObserver(() =>
        (window as unknown as { recordStatus(s: string): void }).recordStatus(
          document.querySelector('#status')!.getAttribute('data-status')!,
        ),
      ).observe(document, {
        subtree: true,
        attributes: true,
        attributeFilter: ['data-status'],
      })
    })
    await p.goto(`${s.url}/?tenant=demo#token=${bad}`)
    await p.waitForSelector('#status[data-status="closed"]')
    expect(await p.textContent('#notice')).toMatch(
      /^Stopped: the edge refused the token \(401\): .+ mint a token with `npx edge-relay token demo`/,
    )
    await new Promise((r) => setTimeout(r, 1_500))
    expect(await p.getAttribute('#status', 'data-status')).toBe('closed')
    expect(statuses.filter((st) => st === 'reconnecting').length).toBeLessThanOrEqual(1) // the first refusal, then stop
    expect(await p.textContent('#presence')).toBe('not connected')
    await p.close()
  })

  it('fits a 390 px wide phone: one column, nothing wider than the screen', async () => {
    const token = await mintToken({ tenant: 'demo' })
    const p = await browser.context.newPage()
    await p.setViewportSize({ width: 390, height: 844 })
    await p.goto(`${s.url}/?tenant=demo&from=10#token=${token}`)
    await p.waitForSelector('#status[data-status="live"]')
    await p.waitForFunction(() => document.querySelectorAll('#events > li').length === 3)
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    const box = (sel: string) => p.locator(sel).first().boundingBox()
    for (const sel of ['header', '.list-wrap', '#events > li', '#publish', '#filter']) {
      const b = (await box(sel))!
      expect(b.x, sel).toBeGreaterThanOrEqual(0)
      expect(b.x + b.width, sel).toBeLessThanOrEqual(390)
    }
    expect((await box('.list-wrap'))!.width).toBeGreaterThan(340) // the list gets the width, not a squeezed column
    mkdirSync(ARTIFACTS, { recursive: true })
    await p.screenshot({ path: resolve(ARTIFACTS, 'tail-page-390.png'), fullPage: true })
    await p.close()
  })

  it('says so when the relay of this npm start is a standby, and clears it once it leads', async () => {
    const token = await mintToken({ tenant: 'demo' })
    const p = await browser.context.newPage()
    let role = 'standby'
    await p.route('**/dev/config', (route) => route.fulfill({ json: { publish: true, relay: role } }))
    await p.goto(`${s.url}/?tenant=demo#token=${token}`)
    await p.waitForSelector('#relay-notice:not([hidden])')
    expect(await p.textContent('#relay-notice')).toMatch(/^Another relay leads this database: .* this page gets events only once it leads/)
    role = 'leader'
    await p.waitForSelector('#relay-notice', { state: 'hidden', timeout: 15_000 })
    await p.close()
    expect(pageErrors).toEqual([])
  })
})
