import { createSseParser, type SseMessage } from '../../shared/sse-parse.ts'

export interface StreamHandle {
  status: number
  headers: Headers
  /** Error body when the request was refused. */
  body?: unknown
  messages: SseMessage[]
  comments: string[]
  /** Seqs of topic events received, in order. */
  seqs(): number[]
  waitFor(pred: (messages: SseMessage[]) => boolean, timeoutMs?: number): Promise<void>
  /** Resolves when the server ends the stream. */
  ended: Promise<void>
  close(): void
}

/** Opens an SSE stream with fetch (Node 20 has no EventSource) and records everything it receives. */
export const openStream = async (url: string, headers: Record<string, string> = {}): Promise<StreamHandle> => {
  const abort = new AbortController()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
  const messages: SseMessage[] = []
  const comments: string[] = []
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const w of waiters) w()
  }
  const handle: StreamHandle = {
    status: res.status,
    headers: res.headers,
    messages,
    comments,
    seqs: () => messages.filter((m) => m.id !== undefined).map((m) => Number(m.id)),
    waitFor(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!pred(messages)) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`timed out after ${timeoutMs} ms; received ${JSON.stringify(messages.slice(-5))} (${messages.length} total)`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    ended: Promise.resolve(),
    close: () => abort.abort(),
  }
  if (!res.ok || !res.body) {
    handle.body = await res.json().catch(() => undefined)
    return handle
  }
  const feed = createSseParser(
    (m) => (messages.push(m), notify()),
    (c) => (comments.push(c), notify()),
  )
  handle.ended = (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) feed(decoder.decode(chunk, { stream: true }))
    } catch {
      // aborted by close()
    }
  })()
  return handle
}
