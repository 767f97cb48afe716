import { backoffMs, sleep } from '../relay/backoff.ts'
import { EVENTS, QUERY } from '../shared/protocol.ts'
import { createSseParser, type SseMessage } from '../shared/sse-parse.ts'

export interface TailOptions {
  /** Edge base URL. */
  url: string
  tenant: string
  token: string
  topics?: string[]
  /** Resume after this seq (0 = everything the room still holds). */
  from?: number
  json: boolean
  /** Program output (events), one line per call. */
  out: (line: string) => void
  /** Status and errors, one line per call. */
  err: (line: string) => void
  color?: boolean
  signal: AbortSignal
}

/** HTTP statuses that retrying cannot fix: the token, tenant or request is wrong. */
const FATAL = new Set([400, 401, 403, 404])

const clock = (d: Date) => d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0')

const paint = (on: boolean | undefined, code: number, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text)

/**
 * Follows a tenant's stream like `tail -f`: prints each event as it arrives and, when the connection drops,
 * reconnects after the last seq it printed, so nothing is skipped or repeated. Resolves with an exit code: 0 when
 * `signal` aborts (Ctrl-C), 1 when the edge refuses the request.
 */
export const tail = async (o: TailOptions): Promise<number> => {
  let last = o.from
  let attempt = 0
  const print = (m: SseMessage) => {
    if (m.event === EVENTS.reset) {
      const info = JSON.parse(m.data) as { head: number }
      last = info.head
      return o.json ? o.out(JSON.stringify({ reset: info })) : o.err(`reset: events up to seq ${info.head} are no longer held; live from here`)
    }
    if (m.id === undefined) return
    const seq = Number(m.id)
    if (last !== undefined && seq <= last) return
    last = seq
    if (o.json) return o.out(`{"seq":${seq},"topic":${JSON.stringify(m.event)},"data":${m.data}}`)
    o.out(`${paint(o.color, 1, `#${seq}`)}  ${paint(o.color, 2, clock(new Date()))}  ${paint(o.color, 36, m.event)}  ${m.data}`)
  }

  while (!o.signal.aborted) {
    const url = new URL(`${o.url.replace(/\/+$/, '')}/v1/tenants/${encodeURIComponent(o.tenant)}/events`)
    if (o.topics?.length) url.searchParams.set(QUERY.topics, o.topics.join(','))
    if (last !== undefined) url.searchParams.set(QUERY.lastEventId, String(last))
    try {
      const res = await fetch(url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${o.token}` },
        signal: o.signal,
      })
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined
        const why = body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`
        o.err(`edge refused the stream (${res.status}) ${why}`)
        if (FATAL.has(res.status)) return 1
        throw new Error(why)
      }
      attempt = 0
      o.err(`following ${o.tenant}${o.topics ? ` (${o.topics.join(', ')})` : ''} at ${o.url}${last !== undefined ? `, after seq ${last}` : ''}`)
      let reauth = false
      const feed = createSseParser((m) => {
        if (m.event === EVENTS.reauth) reauth = true
        else if (m.event !== EVENTS.presence) print(m)
      })
      const decoder = new TextDecoder()
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) feed(decoder.decode(chunk, { stream: true }))
      if (reauth) {
        o.err('the token expired: pass a fresh one with --token (resume with --from ' + (last ?? 0) + ')')
        return 1
      }
      o.err('stream ended; reconnecting')
    } catch (err) {
      if (o.signal.aborted) break
      o.err(`connection lost (${(err as Error).message}); reconnecting`)
    }
    await sleep(backoffMs(attempt++, 250, 10_000), o.signal)
  }
  return 0
}
