import { describe, expect, it } from 'vitest'
import { ConnectionLimits } from './limits.ts'

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
