import { describe, expect, it } from 'vitest'
import { createSseParser, type SseMessage } from './sse-parse.ts'
import { encodeControl, encodeFrame, encodeRetry, frameText, HEARTBEAT } from './sse.ts'

const decode = (b: Uint8Array) => new TextDecoder().decode(b)

describe('SSE framing', () => {
  it('writes the exact bytes of an event frame', () => {
    expect(decode(encodeFrame(7, 'orders', '{"a":1}'))).toBe('id: 7\nevent: orders\ndata: {"a":1}\n\n')
    expect(decode(encodeRetry(1500))).toBe('retry: 1500\n\n')
    expect(decode(encodeControl('reset', { head: 3 }))).toBe('event: reset\ndata: {"head":3}\n\n')
    expect(decode(HEARTBEAT)).toBe(': hb\n\n')
  })
  it('refuses CR or LF in id, event and data (field injection)', () => {
    expect(() => frameText(1, 'a\nid: 99', '{}')).toThrow(/CR or LF/)
    expect(() => frameText('1\r', 'a', '{}')).toThrow(/CR or LF/)
    expect(() => frameText(1, 'a', '{}\n\nevent: x')).toThrow(/CR or LF/)
  })
})

describe('createSseParser', () => {
  it('parses frames split at any byte, comments, and CRLF line ends', () => {
    const text = 'retry: 1000\n\n: hb\n\nid: 1\nevent: t\ndata: {"x":1}\n\r\nid: 2\r\ndata: a\r\ndata: b\r\n\r\n'
    for (let split = 1; split < text.length; split++) {
      const got: SseMessage[] = []
      const comments: string[] = []
      const feed = createSseParser(
        (m) => got.push(m),
        (c) => comments.push(c),
      )
      feed(text.slice(0, split))
      feed(text.slice(split))
      expect(got).toEqual([
        { id: '1', event: 't', data: '{"x":1}' },
        { id: '2', event: 'message', data: 'a\nb' },
      ])
      expect(comments).toEqual(['hb'])
    }
  })
  it('reports each valid retry: value and ignores others, as EventSource does', () => {
    const retries: number[] = []
    createSseParser(
      () => {},
      () => {},
      (ms) => retries.push(ms),
    )('retry: 1234\n\nretry: 12x\n\nretry: -5\nretry:800\n\n')
    expect(retries).toEqual([1234, 800])
  })
})
