/**
 * Server-Sent Events framing. A room encodes each event once and writes the same bytes to every subscriber,
 * which is why we frame by hand here instead of using Hono's `streamSSE` (it re-encodes per subscriber, ~50 µs a
 * write on Node, measured).
 */

const encoder = new TextEncoder()

/** `id`/`event` values go on one line: CR or LF would let a value forge extra fields (the Hono/Mercure check). */
const assertLine = (what: string, value: string) => {
  if (/[\r\n]/.test(value)) throw new Error(`SSE ${what} must not contain CR or LF`)
}

/** One event frame. `data` is JSON text; JSON never holds raw newlines, so one `data:` line suffices. */
export const frameText = (id: number | string, event: string, data: string): string => {
  assertLine('id', String(id))
  assertLine('event', event)
  assertLine('data', data)
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`
}

export const encodeFrame = (id: number | string, event: string, data: string): Uint8Array => encoder.encode(frameText(id, event, data))

/** A frame with no `id:` (so it does not move the client's Last-Event-ID), for control events. */
export const encodeControl = (event: string, data: unknown): Uint8Array => {
  assertLine('event', event)
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
}

export const encodeRetry = (ms: number): Uint8Array => encoder.encode(`retry: ${Math.max(0, Math.floor(ms))}\n\n`)

/** A comment line: keeps proxies from timing out and lets a server notice that a client left. */
export const HEARTBEAT: Uint8Array = encoder.encode(': hb\n\n')

export const encodeText = (text: string): Uint8Array => encoder.encode(text)
