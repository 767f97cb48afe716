import { env, exports } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import type { Env } from '../../edge/platform/workers.ts'
import { sign } from '../../shared/sign.ts'
import { afterRetry } from '../support/retry.ts'
import { mintToken, RELAY_SECRET } from '../support/tokens.ts'

const e = env as unknown as Env
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default
const subscribers = (tenant: string) => runInDurableObject(e.ROOMS.get(e.ROOMS.idFromName(tenant)), (room) => room.subscribers)

const publish = async (tenant: string, seq: number) => {
  const body = JSON.stringify({ tenant, events: [{ seq, topic: 't', data: JSON.stringify({ seq }), ts: Date.now() }] })
  const res = await worker.fetch('https://edge/internal/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-relay-signature': await sign(RELAY_SECRET, body) },
    body,
  })
  return res.json()
}

describe('the Worker entry in workerd', () => {
  it('serves SSE from the room and lets the room forget a browser that left', async () => {
    const tenant = `entry-${crypto.randomUUID().slice(0, 8)}`
    const abort = new AbortController()
    const res = await worker.fetch(`https://edge/v1/tenants/${tenant}/events?access_token=${await mintToken({ tenant })}`, {
      signal: abort.signal,
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    expect(await publish(tenant, 1)).toEqual({ tenant, head: 1 })
    while (!text.includes('id: 1\n')) text += decoder.decode((await reader.read()).value, { stream: true })
    expect(afterRetry(text)).toBe('id: 1\nevent: t\ndata: {"seq":1}\n\n')
    expect(await subscribers(tenant)).toBe(1)
    const presence = await worker.fetch(`https://edge/v1/tenants/${tenant}/presence`, {
      headers: { authorization: `Bearer ${await mintToken({ tenant })}` },
    })
    expect(await presence.json()).toEqual({ tenant, subscribers: 1, topics: { '*': 1 } })

    abort.abort()
    await reader.cancel().catch(() => {})
    const deadline = Date.now() + 10_000
    while ((await subscribers(tenant)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await subscribers(tenant)).toBe(0)
  })

  it('rejects an unsigned publish and a bad token with JSON errors', async () => {
    const unsigned = await worker.fetch('https://edge/internal/publish', { method: 'POST', body: '{}' })
    expect(unsigned.status).toBe(401)
    expect(await unsigned.json()).toMatchObject({ error: { code: 'SIGNATURE_INVALID' } })
    const bad = await worker.fetch('https://edge/v1/tenants/acme/events?access_token=nope')
    expect(bad.status).toBe(401)
  })
})
