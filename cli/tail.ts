import { backoffMs, sleep } from '../relay/timing.ts'
import { QUERY } from '../shared/protocol.ts'
import { resume, type ResumeEffect, type ResumeState } from '../shared/resume.ts'
import { createSseParser } from '../shared/sse-parse.ts'

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

const clock = (d: Date) => `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`

const paint = (on: boolean | undefined, code: number, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text)

/**
 * Follows a tenant's stream like `tail -f`: prints each event as it arrives and, when the connection drops,
 * reconnects after the last seq it printed, so nothing is skipped or repeated. Resolves with an exit code: 0 when
 * `signal` aborts (Ctrl-C), 1 when the edge refuses the request.
 */
export const tail = async (o: TailOptions): Promise<number> => {
  // No gap detection: with --topics other topics' seqs lie between ours, and a tail has nothing to refetch.
  let state: ResumeState = { lastSeq: o.from, detectGaps: false }
  let attempt = 0
  /** `data` is the event's JSON text as the edge sent it, printed unchanged. */
  const print = (seq: number, name: string, data: string) => {
    if (o.json) return o.out(`{"seq":${seq},"topic":${JSON.stringify(name)},"data":${data}}`)
    o.out(`${paint(o.color, 1, `#${seq}`)}  ${paint(o.color, 2, clock(new Date()))}  ${paint(o.color, 36, name)}  ${data}`)
  }
  /** Returns true when the token expired (`reauth`): this CLI cannot fetch a fresh one. */
  const apply = (e: ResumeEffect): boolean => {
    if (e.type === 'event') print(e.seq, e.topic, e.data)
    // A marker prints as a line of its own kind, with the marker as its data.
    else if (e.type === 'undeliverable') print(e.seq, e.event, JSON.stringify(e.marker))
    else if (e.type === 'reset' && o.json) o.out(JSON.stringify({ reset: e.payload }))
    else if (e.type === 'reset') o.err(`reset: events up to seq ${e.payload.head} are no longer held; live from here`)
    else if (e.type === 'malformed') o.err(`ignored a malformed ${e.event} event: ${e.problem}`)
    return e.type === 'reconnect'
  }

  while (!o.signal.aborted) {
    const url = new URL(`${o.url.replace(/\/+$/, '')}/v1/tenants/${encodeURIComponent(o.tenant)}/events`)
    if (o.topics?.length) url.searchParams.set(QUERY.topics, o.topics.join(','))
    if (state.lastSeq !== undefined) url.searchParams.set(QUERY.lastEventId, String(state.lastSeq))
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
      o.err(
        `following ${o.tenant}${o.topics ? ` (${o.topics.join(', ')})` : ''} at ${o.url}${state.lastSeq !== undefined ? `, after seq ${state.lastSeq}` : ''}`,
      )
      let reauth = false
      const feed = createSseParser((m) => {
        const step = resume(state, m)
        state = step.state
        for (const e of step.effects) if (apply(e)) reauth = true
      })
      const decoder = new TextDecoder()
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) feed(decoder.decode(chunk, { stream: true }))
      if (reauth) {
        o.err(`the token expired: pass a fresh one with --token (resume with --from ${state.lastSeq ?? 0})`)
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
