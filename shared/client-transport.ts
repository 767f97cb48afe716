/**
 * How the browser client reaches a stream. The native `EventSource` delivers only the event names it was told to
 * listen for, and our frames are named by topic, so it serves subscriptions that list their topics; a stream of
 * every topic is read with `fetch` and the same SSE parser the CLI uses. Both report the same three things.
 */
import { createSseParser, type SseMessage } from './sse-parse.ts'

export interface TransportHandlers {
  /** The stream is open (HTTP 200). */
  open(): void
  message(m: SseMessage): void
  /** The stream failed or ended; `status` is the HTTP status when one is known. */
  error(err: Error, status?: number): void
}

/** Opens one stream; the returned function closes it. No reconnect here: the client decides. */
export type Transport = (url: string, token: string, eventNames: readonly string[], h: TransportHandlers) => () => void

export const eventSourceTransport =
  (ES: typeof EventSource, idless: readonly string[]): Transport =>
  (url, token, eventNames, h) => {
    const u = new URL(url)
    u.searchParams.set('access_token', token)
    const es = new ES(u.toString())
    let done = false
    es.onopen = () => h.open()
    es.onerror = () => {
      if (done) return
      done = true
      es.close()
      h.error(new Error('stream interrupted'))
    }
    for (const name of eventNames)
      es.addEventListener(name, (e) => {
        // EventSource keeps its last id across events, so a control event would seem to carry the previous seq.
        const id = idless.includes(name) || !e.lastEventId ? undefined : e.lastEventId
        h.message({ ...(id !== undefined ? { id } : {}), event: name, data: (e as MessageEvent<string>).data })
      })
    return () => {
      done = true
      es.close()
    }
  }

/**
 * @param staleMs a stream silent this long is treated as dead (the edge sends a heartbeat every 15 s by default;
 *   a connection that died without a FIN — a sleeping laptop, a NAT that forgot us — otherwise hangs forever).
 */
export const fetchTransport =
  (fetchImpl: typeof fetch, staleMs = 45_000): Transport =>
  (url, token, _eventNames, h) => {
    const abort = new AbortController()
    let watchdog: ReturnType<typeof setTimeout> | undefined
    const alive = () => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => {
        abort.abort()
        h.error(new Error(`no data for ${staleMs} ms`))
      }, staleMs)
    }
    void (async () => {
      const res = await fetchImpl(url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
        signal: abort.signal,
        cache: 'no-store',
      })
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined
        return h.error(new Error(body?.error?.message ?? `HTTP ${res.status}`), res.status)
      }
      h.open()
      alive()
      const feed = createSseParser((m) => h.message(m))
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        alive()
        feed(value)
      }
      clearTimeout(watchdog)
      h.error(new Error('stream ended'))
    })().catch((err: unknown) => {
      clearTimeout(watchdog)
      if (!abort.signal.aborted) h.error(err instanceof Error ? err : new Error(String(err)))
    })
    return () => {
      clearTimeout(watchdog)
      abort.abort()
    }
  }
