import { describe, expect, it } from 'vitest'
import { ConnectionLimits, onStreamEnd } from './limits.ts'

describe('ConnectionLimits', () => {
  it('counts per tenant and per subject, and releases once', () => {
    const l = new ConnectionLimits({ perTenant: 3, perSubject: 2 })
    const a = l.acquire('t', 'u')
    l.acquire('t', 'u')
    expect(() => l.acquire('t', 'u')).toThrow(expect.objectContaining({ code: 'TOO_MANY', headers: { 'retry-after': '5' } }))
    l.acquire('t', undefined)
    expect(() => l.acquire('t', 'v')).toThrow(/tenant has 3/)
    l.acquire('other', 'u') // another tenant's subject "u" is someone else
    a()
    a()
    expect(l.count('t')).toBe(2)
    l.acquire('t', 'u')
  })
})

describe('onStreamEnd', () => {
  const source = (chunks: string[]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const s of chunks) c.enqueue(new TextEncoder().encode(s))
      },
    })

  it('passes bytes through and fires once on cancel', async () => {
    let ended = 0
    const s = onStreamEnd(source(['a', 'b']), () => ended++)
    const r = s.getReader()
    expect(new TextDecoder().decode((await r.read()).value)).toBe('a')
    await r.cancel()
    await r.cancel()
    expect(ended).toBe(1)
  })

  it('fires when the inner stream closes', async () => {
    let ended = 0
    const inner = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array([1])), c.close()) })
    const r = onStreamEnd(inner, () => ended++).getReader()
    await r.read()
    expect((await r.read()).done).toBe(true)
    expect(ended).toBe(1)
  })
})
