/** A parsed SSE event (field semantics per the WHATWG EventSource spec; `retry` goes to its own callback). */
export interface SseMessage {
  id?: string
  event: string
  data: string
}

/**
 * Incremental SSE parser for clients that are not browsers (tests, the tail CLI, benchmarks). Feed it text as it
 * arrives; it calls `onMessage` per dispatched event, `onComment` per comment line, and `onRetry` with each valid
 * `retry:` value (ms: the reconnection time an EventSource would adopt).
 */
export const createSseParser = (
  onMessage: (m: SseMessage) => void,
  onComment: (text: string) => void = () => {},
  onRetry: (ms: number) => void = () => {},
) => {
  let buffer = ''
  let id: string | undefined
  let event = ''
  let data: string[] = []
  const line = (l: string) => {
    if (l === '') {
      if (data.length > 0 || event !== '')
        onMessage({ ...(id !== undefined ? { id } : {}), event: event || 'message', data: data.join('\n') })
      event = ''
      data = []
      id = undefined
      return
    }
    if (l.startsWith(':')) return onComment(l.slice(1).trimStart())
    const colon = l.indexOf(':')
    const field = colon === -1 ? l : l.slice(0, colon)
    let value = colon === -1 ? '' : l.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') data.push(value)
    else if (field === 'event') event = value
    else if (field === 'id') id = value
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value))
  }
  return (chunk: string) => {
    buffer += chunk
    let nl: number
    while ((nl = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const len = buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (buffer[nl] === '\r' && nl + 1 === buffer.length) break
      line(buffer.slice(0, nl))
      buffer = buffer.slice(nl + len)
    }
  }
}
