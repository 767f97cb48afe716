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
    await small.close()
  })
})
