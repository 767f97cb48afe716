/**
 * Property-style isolation: random tenants, grants, requested topics, resume points and events (seeded, so a failure
 * reproduces with ISOLATION_SEED=<seed>). Every subscriber must receive exactly the events of its own tenant that its
 * grants and requested topics allow — nothing more, nothing less, in seq order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openStream, type StreamHandle } from '../support/sse-client.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

/** mulberry32: a tiny seeded PRNG. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const TOPICS = ['orders', 'orders.eu', 'orders.us', 'ordersx', 'users', 'user.created', 'user.deleted', 'billing:invoice']
const GRANT_POOL = [...TOPICS, 'orders*', 'orders.*', 'user.*', 'user*', 'billing:*', '*']

/** The oracle, written apart from edge/room/topics.ts on purpose. */
const allowed = (topic: string, grants: string[] | undefined, requested: string[] | undefined) => {
  const granted = (t: string) => grants === undefined || grants.some((g) => (g.endsWith('*') ? t.startsWith(g.slice(0, -1)) : g === t))
  return granted(topic) && (requested === undefined || requested.includes(topic))
}

interface Sub {
  tenant: string
  grants?: string[]
  requested?: string[]
  after: number
  via: 'header' | 'ticket'
  h?: StreamHandle
}

interface Ev {
  tenant: string
  seq: number
  topic: string
}

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

const seeds = process.env.ISOLATION_SEED ? [Number(process.env.ISOLATION_SEED)] : [1, 2, 3]

describe('tenant and topic isolation (property)', () => {
  for (const seed of seeds)
    it(`seed ${seed}: no subscriber sees anything outside its tenant and granted topics`, async () => {
      const rand = prng(seed)
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
      const some = <T>(xs: readonly T[], max: number) => [...new Set(Array.from({ length: 1 + Math.floor(rand() * max) }, () => pick(xs)))]
      const tenants = Array.from({ length: 3 + Math.floor(rand() * 3) }, (_, i) => `p${seed}-t${i}`)
      // Similar-looking tenant ids on purpose: prefix mix-ups would show.
      tenants.push(`${tenants[0]}0`)
      const heads = new Map(tenants.map((t) => [t, 0]))
      const published: Ev[] = []

      const connect = async (sub: Sub) => {
        const token = await mintToken({
          tenant: sub.tenant,
          sub: `u${Math.floor(rand() * 5)}`,
          ...(sub.grants ? { topics: sub.grants } : {}),
        })
        const q = new URLSearchParams({ last_event_id: String(sub.after) })
        if (sub.requested) q.set('topics', sub.requested.join(','))
        let headers: Record<string, string> = { authorization: `Bearer ${token}` }
        if (sub.via === 'ticket') {
          const res = await fetch(`${s.edge.url}/v1/tickets`, { method: 'POST', headers })
          q.set('access_token', ((await res.json()) as { ticket: string }).ticket)
          headers = {}
        }
        sub.h = await openStream(`${s.edge.url}/v1/tenants/${sub.tenant}/events?${q}`, headers)
        expect(sub.h.status, JSON.stringify(sub.h.body)).toBe(200)
      }
      const randomSub = (): Sub => {
        const tenant = pick(tenants)
        const grants = rand() < 0.3 ? undefined : some(GRANT_POOL, 3)
        // Requested topics must be granted (else 403): draw from topics the grants allow.
        const grantable = TOPICS.filter((t) => allowed(t, grants, undefined))
        const requested = rand() < 0.5 || grantable.length === 0 ? undefined : some(grantable, 3)
        return {
          tenant,
          ...(grants ? { grants } : {}),
          ...(requested ? { requested } : {}),
          after: heads.get(tenant)!,
          via: rand() < 0.5 ? 'header' : 'ticket',
        }
      }
      const publishSome = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const tenant = pick(tenants)
          const topic = pick(TOPICS)
          const seq = await s.publish(tenant, topic, { tenant, topic })
          heads.set(tenant, seq)
          published.push({ tenant, seq, topic })
        }
      }

      const subs: Sub[] = Array.from({ length: 12 }, randomSub)
      for (const sub of subs) await connect(sub)
      await publishSome(80)
      // Late joiners resume from a random point of their tenant's past (history replay, then live).
      const late: Sub[] = Array.from({ length: 8 }, () => {
        const sub = randomSub()
        return { ...sub, after: Math.floor(rand() * (heads.get(sub.tenant)! + 1)) }
      })
      for (const sub of late) await connect(sub)
      subs.push(...late)
      await publishSome(80)

      // Barrier: once every room holds its tenant's head, a heartbeat queued behind the last frame proves that each
      // stream has received everything the room ever wrote to it.
      for (const [tenant, head] of heads) {
        if (head === 0) continue
        const deadline = Date.now() + 30_000
        while (s.edge.rooms.room(tenant).head < head) {
          if (Date.now() > deadline) throw new Error(`room ${tenant} stuck below ${head}`)
          await new Promise((r) => setTimeout(r, 20))
        }
      }
      const marks = subs.map((sub) => sub.h!.comments.length)
      for (const tenant of tenants) s.edge.rooms.room(tenant).heartbeat()
      await Promise.all(subs.map((sub, i) => sub.h!.waitFor(() => sub.h!.comments.length > marks[i]!, 30_000)))

      for (const sub of subs) {
        const want = published.filter((e) => e.tenant === sub.tenant && e.seq > sub.after && allowed(e.topic, sub.grants, sub.requested))
        const got = sub
          .h!.messages.filter((m) => m.id !== undefined)
          .map((m) => ({ seq: Number(m.id), topic: m.event, data: JSON.parse(m.data) }))
        const context = `seed ${seed}, subscriber ${JSON.stringify({ ...sub, h: undefined })}`
        for (const g of got) expect(g.data, context).toEqual({ tenant: sub.tenant, topic: g.topic })
        expect(
          got.map((g) => [g.seq, g.topic]),
          context,
        ).toEqual(want.map((e) => [e.seq, e.topic]))
        sub.h!.close()
      }
    })
})
