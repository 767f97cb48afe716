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
})
