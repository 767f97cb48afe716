/**
 * The browser client: a small typed wrapper over the platform's streaming (native `EventSource`, or `fetch` for a
 * stream of every topic — see client-transport.ts). It fetches a token before every connection, resumes after the
 * last seq it saw across reconnects and token renewals (`event: reauth`), calls `onReset` when it cannot be sure it
 * has everything (`event: reset`, or a jump in seq), and reports its status. No dependencies. What each message means
 * for the resume point is decided in resume.ts; this file connects, reconnects and calls back.
 *
 * ```ts
 * import { connect, ticketFetcher } from 'edge-relay/client'
 * const stream = connect({
 *   url: 'https://edge.example.com', tenant: 'acme', topics: ['orders'],
 *   getToken: ticketFetcher({ url: 'https://edge.example.com/v1/tickets', appToken: () => myAppJwt(), topics: ['orders'] }),
 *   after: snapshot.seq,               // the seq your initial fetch reflects, if any
 *   onEvent: (e) => apply(e.topic, e.data),
 *   onReset: () => refetchEverything(), // you were away longer than the room remembers
 *   onStatus: (s) => showBadge(s),
 * })
 * ```
 */
import { MARKER_EVENTS, QUERY, type UndeliverableMarker } from './protocol.ts'
import type { PresenceSnapshot } from './presence.ts'
import { eventSourceTransport, fetchTransport, type Transport } from './client-transport.ts'
import { CONTROL_EVENTS, resume, type ResumeEffect, type ResumeState } from './resume.ts'
import type { SseMessage } from './sse-parse.ts'

export type Status = 'connecting' | 'live' | 'reconnecting' | 'closed'

export type RelayEvent<T = unknown> = { seq: number; topic: string; data: T }

/** Why the app must refetch: the edge said so (`reset`), or the client saw seqs go missing (`gap`). */
export type ResetInfo = { reason: 'reset'; head: number } | { reason: 'gap'; expected: number; got: number }

export interface ClientOptions {
  /** The edge's base URL, e.g. `https://edge.example.com` (a relative URL resolves against the page). */
  url: string
  tenant: string
  /** A token for `tenant`: called before every connection, so return a fresh ticket or a cached, still valid token. */
  getToken: () => string | Promise<string>
  /** Topics to receive (none = every topic the token grants). */
  topics?: readonly string[]
  /** Start after this seq (what your initial fetch reflects); undefined = only what happens from now on. */
  after?: number
  /** Also receive presence (subscriber counts per topic), coalesced to at most one a second. */
  presence?: boolean
  /**
   * Treat a jump in seq as a gap (calls `onReset`). Seqs count every topic of the tenant, so this is only right when
   * the stream carries every topic: the default is on exactly when `topics` is not given. Turn it off when the token
   * grants only some topics.
   */
  detectGaps?: boolean
  onEvent?: (event: RelayEvent) => void
  /**
   * An event the edge could not carry (larger than it accepts, or refused): its seq and topic, its size and why.
   * Fetch it from your app if you need it; the stream goes on after it without a gap.
   */
  onUndeliverable?: (event: { seq: number } & UndeliverableMarker) => void
  onReset?: (info: ResetInfo) => void
  onStatus?: (status: Status) => void
  onPresence?: (presence: PresenceSnapshot) => void
  /** Every failed connection attempt (the client keeps retrying with backoff until `close()`). */
  onError?: (err: Error, status?: number) => void
  /** Longest wait between reconnect attempts (ms). */
  maxRetryMs?: number
  /**
   * A stream read with fetch (no `topics`) that receives nothing, not even a heartbeat, for this long is reconnected
   * (default 45 s: three of the edge's default heartbeats). Native EventSource hides heartbeats, so this cannot
   * apply to it.
   */
  staleMs?: number
  /** Overrides for tests and non-browser runtimes. */
  EventSource?: typeof EventSource
  fetch?: typeof fetch
}

export interface RelayClient {
  readonly status: Status
  /** The last seq received (or the `after` given), undefined before any. */
  readonly lastSeq: number | undefined
  /** Drops the current connection and resumes at once (e.g. after the app refreshed its login). */
  reconnect(): void
  close(): void
}

/** Backoff before attempt `n` (0-based): 250 ms doubling to `cap`, with jitter so a fleet does not stampede. */
export const retryDelay = (n: number, cap: number, random = Math.random): number =>
  n === 0 ? 0 : Math.min(cap, 250 * 2 ** (n - 1)) * (0.5 + random() / 2)

/**
 * A `getToken` that exchanges the app's token for a short-lived ticket (`POST /v1/tickets`), or calls your own
 * backend's ticket URL with the page's cookies. The reply must be JSON with `ticket` (or `token`).
 */
export const ticketFetcher =
  (o: { url: string; appToken?: () => string | Promise<string>; topics?: readonly string[]; fetch?: typeof fetch }) =>
  async (): Promise<string> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (o.appToken) headers.authorization = `Bearer ${await o.appToken()}`
    const body = JSON.stringify(o.topics ? { topics: o.topics } : {})
    const res = await (o.fetch ?? fetch)(o.url, { method: 'POST', headers, credentials: 'include', body })
    const reply = (await res.json().catch(() => ({}))) as { ticket?: string; token?: string; error?: { message?: string } }
    const token = reply.ticket ?? reply.token
    if (!res.ok || !token) throw new Error(`ticket request failed (${res.status}): ${reply.error?.message ?? 'no ticket in reply'}`)
    return token
  }

/** Opens a stream and keeps it open until `close()`. */
export const connect = (o: ClientOptions): RelayClient => {
  const maxRetryMs = o.maxRetryMs ?? 15_000
  const ES = o.EventSource ?? (globalThis as { EventSource?: typeof EventSource }).EventSource
  // EventSource hears only the event names it listens for: a stream of every topic needs fetch.
  const transport: Transport =
    o.topics?.length && ES
      ? eventSourceTransport(ES, CONTROL_EVENTS)
      : fetchTransport(o.fetch ?? globalThis.fetch.bind(globalThis), o.staleMs)
  const base = new URL(`${o.url.replace(/\/+$/, '')}/v1/tenants/${encodeURIComponent(o.tenant)}/events`, globalThis.location?.href)
  let status: Status = 'connecting'
  let resumeState: ResumeState = { lastSeq: o.after, detectGaps: o.detectGaps ?? !o.topics?.length }
  let attempt = 0
  let stop: (() => void) | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let generation = 0

  const setStatus = (s: Status) => {
    if (s === status) return
    status = s
    o.onStatus?.(s)
  }

  const apply = (e: ResumeEffect) => {
    if (e.type === 'event') o.onEvent?.({ seq: e.seq, topic: e.topic, data: JSON.parse(e.data) as unknown })
    else if (e.type === 'undeliverable') o.onUndeliverable?.({ seq: e.seq, ...e.marker })
    else if (e.type === 'gap') o.onReset?.({ reason: 'gap', expected: e.expected, got: e.got })
    else if (e.type === 'reset') o.onReset?.({ reason: 'reset', head: e.payload.head })
    else if (e.type === 'reconnect') retry(true)
    else if (e.type === 'presence') o.onPresence?.(e.snapshot)
    // `malformed`: ignored. The browser has no log of ours to write to, and a reset we could not read still shows
    // as a gap where gaps are detected.
  }

  const onMessage = (m: SseMessage) => {
    const step = resume(resumeState, m)
    resumeState = step.state
    for (const e of step.effects) apply(e)
  }

  const open = async () => {
    const mine = ++generation
    let token: string
    try {
      token = await o.getToken()
    } catch (err) {
      if (mine === generation) fail(err instanceof Error ? err : new Error(String(err)))
      return
    }
    if (mine !== generation || status === 'closed') return
    const url = new URL(base)
    if (o.topics?.length) url.searchParams.set(QUERY.topics, o.topics.join(','))
    if (o.presence) url.searchParams.set(QUERY.presence, '1')
    const { lastSeq } = resumeState
    if (lastSeq !== undefined) url.searchParams.set(QUERY.lastEventId, String(lastSeq))
    const names = [...(o.topics ?? []), ...CONTROL_EVENTS, ...MARKER_EVENTS]
    stop = transport(url.toString(), token, names, {
      open: () => {
        if (mine !== generation) return
        attempt = 0
        setStatus('live')
      },
      message: (m) => mine === generation && onMessage(m),
      error: (err, code) => mine === generation && fail(err, code),
    })
  }

  const fail = (err: Error, code?: number) => {
    o.onError?.(err, code)
    retry(false)
  }

  /** Closes the current stream and opens another, at once (`now`) or after backoff. */
  const retry = (now: boolean) => {
    if (status === 'closed') return
    generation++
    stop?.()
    stop = undefined
    clearTimeout(timer)
    setStatus('reconnecting')
    const wait = now ? 0 : retryDelay(++attempt, maxRetryMs)
    timer = setTimeout(() => void open(), wait)
  }

  o.onStatus?.(status)
  void open()
  return {
    get status() {
      return status
    },
    get lastSeq() {
      return resumeState.lastSeq
    },
    reconnect: () => retry(true),
    close() {
      generation++
      clearTimeout(timer)
      stop?.()
      setStatus('closed')
    },
  }
}
