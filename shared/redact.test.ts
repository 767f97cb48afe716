import { describe, expect, it } from 'vitest'
import { redactUrl } from './redact.ts'

describe('redactUrl', () => {
  it('removes access_token values wherever they sit in the query', () => {
    expect(redactUrl('/v1/tenants/a/events?access_token=eyJ.x.y')).toBe('/v1/tenants/a/events?access_token=REDACTED')
    expect(redactUrl('http://h/p?topics=a&ACCESS_TOKEN=abc&last_event_id=3#f')).toBe(
      'http://h/p?topics=a&ACCESS_TOKEN=REDACTED&last_event_id=3#f',
    )
    expect(redactUrl('/p?topics=a,b')).toBe('/p?topics=a,b')
  })

  it('removes token values whose parameter names are percent-encoded, in any case', () => {
    expect(redactUrl('/p?access%5Ftoken=secret1')).toBe('/p?access%5Ftoken=REDACTED')
    expect(redactUrl('/p?topics=a&%61ccess_token=secret2')).toBe('/p?topics=a&%61ccess_token=REDACTED')
    expect(redactUrl('/p?%61%63%63%65%73%73%5f%74%6f%6b%65%6e=secret3&last_event_id=1')).toBe(
      '/p?%61%63%63%65%73%73%5f%74%6f%6b%65%6e=REDACTED&last_event_id=1',
    )
    expect(redactUrl('/p?ACCESS%5ftoken=secret4#x')).toBe('/p?ACCESS%5ftoken=REDACTED#x')
    expect(redactUrl('/p?%74oken=secret5')).toBe('/p?%74oken=REDACTED')
    expect(redactUrl('/p??access_token=secret6')).toBe('/p??access_token=REDACTED')
    // What a server decodes to another name keeps its value; a malformed escape is no crash.
    expect(redactUrl('/p?access%255Ftoken=v&x%zz=1')).toBe('/p?access%255Ftoken=v&x%zz=1')
  })
})
