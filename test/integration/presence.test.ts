import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PresenceSnapshot } from '../../shared/presence.ts'
import { openStream } from '../support/sse-client.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

const presence = async (tenant: string, grant?: string[]) => {
  const token = await mintToken({ tenant, ...(grant ? { topics: grant } : {}) })
  const res = await fetch(`${s.edge.url}/v1/tenants/${tenant}/presence`, { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, body: (await res.json()) as PresenceSnapshot }
}

/** A subscriber in another process, killed with SIGKILL: it never closes its connection politely. */
const externalSubscriber = async (tenant: string, topics: string) => {
  const url = `${s.edge.url}/v1/tenants/${tenant}/events?topics=${topics}&access_token=${await mintToken({ tenant })}`
  const child = spawn(
    process.execPath,
    ['-e', `fetch(${JSON.stringify(url)}).then(async (r) => { console.log(r.status); for await (const _ of r.body); })`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  expect(line.toString().trim()).toBe('200')
  return child
}

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('presence', () => {
  it('counts follow joins and leaves, including a subscriber killed mid-stream', async () => {
    expect((await presence('pr')).body).toEqual({ tenant: 'pr', subscribers: 0, topics: {} })
    const a = await s.subscribe('pr', { topics: 'orders' })
    const b = await s.subscribe('pr', { topics: 'orders,users' })
    const killed = await externalSubscriber('pr', 'users')
    expect((await presence('pr')).body).toEqual({ tenant: 'pr', subscribers: 3, topics: { orders: 2, users: 2 } })
    // A token limited to `orders` sees only that topic's count, and only its subscribers in the total.
    expect((await presence('pr', ['orders'])).body).toEqual({ tenant: 'pr', subscribers: 2, topics: { orders: 2 } })

    killed.kill('SIGKILL')
    await until('the killed subscriber to leave', async () => (await presence('pr')).body.topics.users === 1)
    a.close()
    await until('the closed subscriber to leave', async () => (await presence('pr')).body.subscribers === 1)
    expect((await presence('pr')).body).toEqual({ tenant: 'pr', subscribers: 1, topics: { orders: 1, users: 1 } })
    b.close()
  })

  it('refuses another tenant’s token', async () => {
    const token = await mintToken({ tenant: 'other' })
    const res = await fetch(`${s.edge.url}/v1/tenants/pr/presence`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(403)
    expect(await res.json()).toMatchObject({ error: { code: 'TENANT_FORBIDDEN' } })
  })

  it('presence=1 subscribers get coalesced presence events: 50 joins cost one event per second, not 50', async () => {
    const token = await mintToken({ tenant: 'co' })
    const watcher = await openStream(`${s.edge.url}/v1/tenants/co/events?presence=1&access_token=${token}`)
    const presenceEvents = () => watcher.messages.filter((m) => m.event === 'presence').map((m) => JSON.parse(m.data) as PresenceSnapshot)
    await watcher.waitFor(() => presenceEvents().length === 1)
    expect(presenceEvents()[0]).toEqual({ tenant: 'co', subscribers: 1, topics: { '*': 1 } })
    const started = Date.now()
    const subs = await Promise.all(Array.from({ length: 50 }, () => s.subscribe('co', { topics: 'feed' })))
    const joinedMs = Date.now() - started
    await watcher.waitFor(() => presenceEvents().at(-1)?.subscribers === 51, 15_000)
    expect(presenceEvents().at(-1)).toEqual({ tenant: 'co', subscribers: 51, topics: { '*': 1, feed: 50 } })
    // One event per started second of joining, plus the one the watcher got on arrival.
    expect(presenceEvents().length).toBeLessThanOrEqual(2 + Math.ceil(joinedMs / 1000))
    const count = presenceEvents().length
    for (const h of subs) h.close()
    await watcher.waitFor(() => presenceEvents().at(-1)?.subscribers === 1, 15_000)
    expect(presenceEvents().length - count).toBeLessThanOrEqual(2)
    expect(presenceEvents().at(-1)).toEqual({ tenant: 'co', subscribers: 1, topics: { '*': 1 } })
    // Presence frames carry no id: they never move a client's Last-Event-ID.
    expect(watcher.messages.filter((m) => m.event === 'presence').every((m) => m.id === undefined)).toBe(true)
    watcher.close()
  })
})
