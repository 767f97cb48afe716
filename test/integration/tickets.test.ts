/**
 * Tickets end to end (app token in a header → seconds-lived ticket in ?access_token=), and a stream whose app token
 * expires: `event: reauth`, a new ticket, resume with last_event_id, nothing lost and nothing twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, ticketFetcher, type ResetInfo } from '../../shared/client.ts'
import type { TicketReply } from '../../shared/schema.ts'
import { openStream } from '../support/sse-client.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

let s: Stack
beforeAll(async () => {
  s = await startStack({ edge: { EDGE_TICKET_TTL_S: '1' } })
})
afterAll(() => s?.stop())

const nowS = () => Math.floor(Date.now() / 1000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** What a browser app does: POST its app token (a header, never a URL) and get a ticket. */
const getTicket = async (appToken: string, body: unknown = {}) => {
  const res = await fetch(`${s.edge.url}/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${appToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(200)
  return (await res.json()) as TicketReply
}
const streamUrl = (tenant: string, q: Record<string, string>) => `${s.edge.url}/v1/tenants/${tenant}/events?${new URLSearchParams(q)}`

describe('tickets', () => {
  it('scope a stream to the requested topics; expire for new streams while open streams go on', async () => {
    const exp = nowS() + 3600
    const app = await mintToken({ tenant: 'shop', sub: 'alice', topics: ['orders.*', 'users'] }, { expiresIn: exp })
    const reply = await getTicket(app, { topics: ['orders.*'] })
    expect(reply).toMatchObject({ tenant: 'shop', topics: ['orders.*'], streamExpiresAt: exp * 1000 })
    expect(reply.expiresAt - Date.now()).toBeLessThanOrEqual(1_000)

    const sub = await openStream(streamUrl('shop', { access_token: reply.ticket }))
    expect(sub.status).toBe(200)
    await s.publish('shop', 'orders.eu', { n: 1 })
    await s.publish('shop', 'users', { n: 2 })
    await s.publish('shop', 'orders.us', { n: 3 })
    await sub.waitFor((m) => m.some((x) => x.id === '3'))
    expect(sub.seqs()).toEqual([1, 3])

    // The ticket is narrower than the app token: it cannot widen itself with ?topics=.
    const wider = await openStream(streamUrl('shop', { access_token: reply.ticket, topics: 'users' }))
    expect(wider).toMatchObject({ status: 403, body: { error: { code: 'TOPIC_FORBIDDEN' } } })

    await sleep(4_200) // past the ticket's 1 s, +1 s of rounding, +2 s of allowed drift; long before the app token's exp
    const late = await openStream(streamUrl('shop', { access_token: reply.ticket }))
    expect(late).toMatchObject({ status: 401, body: { error: { code: 'TOKEN_EXPIRED' } } })
    await s.publish('shop', 'orders.eu', { n: 4 })
    await sub.waitFor((m) => m.some((x) => x.id === '4'))
    expect(sub.seqs()).toEqual([1, 3, 4])
    sub.close()
  })

  it('accept topics in the query string when there is no body, and inherit the grants when none are asked for', async () => {
    const app = await mintToken({ tenant: 'shop2', topics: ['a', 'b'] })
    const res = await fetch(`${s.edge.url}/v1/tickets?topics=b`, { method: 'POST', headers: { authorization: `Bearer ${app}` } })
    expect(((await res.json()) as TicketReply).topics).toEqual(['b'])
    expect((await getTicket(app)).topics).toEqual(['a', 'b'])
  })

  it('a stream whose app token expires gets reauth, fetches a new ticket and resumes without a gap', async () => {
    const tenant = 'renew'
    let stop = false
    let last = 0
    const publisher = (async () => {
      while (!stop) {
        last = await s.publish(tenant, 't', { at: Date.now() })
        await sleep(50)
      }
    })()

    const first = await getTicket(await mintToken({ tenant }, { expiresIn: nowS() + 3 }))
    const a = await openStream(streamUrl(tenant, { access_token: first.ticket, last_event_id: '0' }))
    expect(a.status).toBe(200)
    await a.ended // the token behind it expired
    const tail = a.messages.at(-1)!
    expect(tail.event).toBe('reauth')
    expect(tail.id).toBeUndefined() // control frames do not move Last-Event-ID
    const seen = a.seqs()
    expect(seen.length).toBeGreaterThan(0)

    await sleep(300) // the client is away while events keep coming
    const renewed = await getTicket(await mintToken({ tenant }))
    const b = await openStream(streamUrl(tenant, { access_token: renewed.ticket, last_event_id: String(seen.at(-1)) }))
    expect(b.status).toBe(200)
    await sleep(300)
    stop = true
    await publisher
    await b.waitFor((m) => m.some((x) => x.id === String(last)), 30_000)
    const all = [...seen, ...b.seqs()]
    expect(all).toEqual(Array.from({ length: last }, (_, i) => i + 1))
    b.close()
  })

  it('shared/client.ts with ticketFetcher renews through reauth with app tokens of 3 s, nothing lost or doubled', async () => {
    const tenant = 'client-renew'
    const seqs: number[] = []
    const resets: ResetInfo[] = []
    let tickets = 0
    const client = connect({
      url: s.edge.url,
      tenant,
      after: 0,
      getToken: async () => {
        tickets++
        return ticketFetcher({ url: `${s.edge.url}/v1/tickets`, appToken: () => mintToken({ tenant }, { expiresIn: nowS() + 3 }) })()
      },
      onEvent: (e) => seqs.push(e.seq),
      onReset: (r) => resets.push(r),
    })
    try {
      let last = 0
      const until = Date.now() + 7_000 // at least one expiry of the 3 s app tokens
      while (Date.now() < until) {
        last = await s.publish(tenant, 't', {})
        await sleep(100)
      }
      const deadline = Date.now() + 30_000
      while (seqs.length < last && Date.now() < deadline) await sleep(50)
      expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1))
      expect(resets).toEqual([])
      expect(tickets).toBeGreaterThanOrEqual(2) // it did renew
    } finally {
      client.close()
    }
  })
})
