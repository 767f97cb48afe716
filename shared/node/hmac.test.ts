import { describe, expect, it } from 'vitest'
import { sign, verify, webHmac } from '../sign.ts'
import { nodeHmac } from './hmac.ts'

const secret = 'relay-secret-0123456789abcdef'
const body = JSON.stringify({ tenant: 'acme', events: [{ seq: 1, topic: 't', data: { é: '✓' } }] })
const now = 1_800_000_000

describe('node:crypto HMAC (the Node relay and edge)', () => {
  it('signs exactly as Web Crypto does, and each verifies the other', async () => {
    const web = await sign(secret, body, now, webHmac)
    const node = await sign(secret, body, now, nodeHmac)
    expect(node).toBe(web)
    expect(node).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/)
    expect(await verify(secret, web, body, 300, now, nodeHmac)).toMatchObject({ ok: true, t: now })
    expect(await verify(secret, node, body, 300, now, webHmac)).toMatchObject({ ok: true, t: now })
  })

  it('refuses a changed body, a changed MAC and another secret', async () => {
    const header = await sign(secret, body, now, nodeHmac)
    const flipped = header.replace(/v1=(.)/, (_, c: string) => `v1=${c === '0' ? '1' : '0'}`)
    for (const [h, b, s] of [
      [header, `${body} `, secret],
      [flipped, body, secret],
      [header, body, `${secret}x`],
    ] as const)
      expect(await verify(s, h, b, 300, now, nodeHmac)).toEqual({ ok: false, reason: 'signature does not match the body' })
  })
})
