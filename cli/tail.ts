import { backoffMs, sleep } from '../shared/backoff.ts'
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

/** Why a fetch failed, in words: undici's "fetch failed" hides the cause (ECONNREFUSED, ENOTFOUND…) one level down. */
const reason = (err: unknown): string => {
  const e = err as Error & { cause?: { code?: string; message?: string } }
  const cause = e.cause?.code ?? e.cause?.message
  return cause && e.message === 'fetch failed' ? cause : cause ? `${e.message}: ${cause}` : e.message
}

/** A failure repeated with the same reason is said again at most this often (with how many attempts it took). */
const REPEAT_MS = 30_000

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

  /** The last failure said, so that an edge down for an hour is one line every REPEAT_MS, not one per retry. */
  let said: { why: string; at: number; quiet: number } | undefined
  const retrying = (where: string, why: string, waitMs: number) => {
    const now = Date.now()
    if (said?.why === why && now - said.at < REPEAT_MS) return void said.quiet++
    const quiet = said?.why === why && said.quiet ? ` (${said.quiet + 1} attempts since the last line)` : ''
    o.err(`${where}: ${why}; retrying in ${(waitMs / 1000).toFixed(1)} s${quiet}`)
    said = { why, at: now, quiet: 0 }
  }

  while (!o.signal.aborted) {
    const url = new URL(`${o.url.replace(/\/+$/, '')}/v1/tenants/${encodeURIComponent(o.tenant)}/events`)
    /** The stream's URL as printed: the token goes in a header, so this carries none. */
    const where = url.origin + url.pathname
    if (o.topics?.length) url.searchParams.set(QUERY.topics, o.topics.join(','))
    if (state.lastSeq !== undefined) url.searchParams.set(QUERY.lastEventId, String(state.lastSeq))
    let why: string
    try {
      const res = await fetch(url, {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${o.token}` },
        signal: o.signal,
      })
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined
        const refusal = body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`
        // A token, tenant or request the edge refuses stays refused: retrying would print this forever.
        if (FATAL.has(res.status)) {
          const fix =
            res.status === 401 || res.status === 403
              ? 'the token is the problem and will not fix itself: pass a valid one for this tenant with --token'
              : 'check the tenant, --topics and --url'
          o.err(`${where}: edge refused the stream (${res.status}) ${refusal}; ${fix}`)
          return 1
        }
        throw Object.assign(new Error(`edge refused the stream (${res.status}) ${refusal}`), { refused: true })
      }
      attempt = 0
      said = undefined
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
      why = 'the stream ended'
    } catch (err) {
      if (o.signal.aborted) break
      why = (err as { refused?: boolean }).refused ? (err as Error).message : `cannot reach the edge (${reason(err)})`
    }
    const waitMs = backoffMs(attempt++, 250, 10_000)
    retrying(where, why, waitMs)
    await sleep(waitMs, o.signal)
  }
  return 0
}
