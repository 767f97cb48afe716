import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { cors } from 'hono/cors'
import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { parseJsonBody } from '../shared/json.ts'
import { DEFAULTS, HEADERS, PATHS, QUERY } from '../shared/protocol.ts'
import { redactUrl } from '../shared/redact.ts'
import { HelloBody, PublishBody, TenantId, Topic } from '../shared/schema.ts'
import { verify as verifySignature, type Hmac } from '../shared/sign.ts'
import { tokenWithSource, type Auth } from './auth.ts'
import { checkBatch } from './batch.ts'
import { ConnectionLimits, UNREAD_BODY } from './limits.ts'
import { ReplayCache } from './replay.ts'
import { ticketRoute } from './ticket-route.ts'
import { grantsAllow } from './room/topics.ts'
import type { ConnectRequest, Rooms } from './room/rooms.ts'
import type { Context } from 'hono'

export interface EdgeConfig {
  relaySecret: string
  retryMs?: number
  signatureWindowS?: number
  maxPublishBytes?: number
  /** Most topics one connection may ask for. */
  maxTopics?: number
  /** Live streams per tenant / per token subject on this instance (429 past them). */
  maxConnectionsPerTenant?: number
  maxConnectionsPerSubject?: number
  /** Longest query string (414 past it). */
  maxQueryBytes?: number
  /** Largest single event's JSON data in a publish body (413 past it). */
  maxEventBytes?: number
  /** Browser origins allowed by CORS (none: no CORS headers). */
  corsOrigins?: readonly string[]
  /** Relay signatures remembered against replay. */
  replayCacheEntries?: number
  /** Refuse app tokens in `?access_token=`: URLs (which end up in logs and histories) may carry tickets only. */
  queryTicketsOnly?: boolean
}

export interface AppDeps {
  rooms: Rooms
  auth: Auth
  config: EdgeConfig
  /** Called with every unexpected error (the response is a 500 either way). */
  log?: (level: 'error' | 'warn' | 'info', msg: string, fields?: Record<string, unknown>) => void
  /**
   * How an authorised stream is served, chosen once by the platform: Node writes bytes straight to the socket
   * (node-sse.ts); the default is a ReadableStream Response from the room stub.
   */
  streams?: StreamServer
  /** The relay signature's HMAC (default: Web Crypto; Node passes node:crypto's, which needs no threadpool hop). */
  hmac?: Hmac
}

/**
 * See AppDeps.streams. Called after auth and limits; throwing a RelayError still answers with the JSON error.
 * `ended` must be called once when a stream it served ends, for any reason (it releases the connection slot).
 */
export type StreamServer = (c: Context, tenant: string, request: ConnectRequest, ended: () => void) => Response | Promise<Response>

/** The portable way: the room stub's ReadableStream as the response body. */
const readableStreams =
  (rooms: Rooms): StreamServer =>
  async (c, tenant, request, ended) =>
    new Response(await rooms.get(tenant).connect(request, { signal: c.req.raw.signal, ended }), { headers: SSE_HEADERS })

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx and some proxies buffer responses unless told not to.
  'x-accel-buffering': 'no',
} as const

const parseTenant = (raw: string) => {
  const r = v.safeParse(TenantId, raw)
  if (!r.success) throw new RelayError('INVALID_TENANT', `invalid tenant id: ${v.summarize(r.issues)}`)
  return r.output
}

const parseTopics = (raw: string | undefined, max: number): string[] | undefined => {
  if (raw === undefined || raw === '') return undefined
  const topics = [...new Set(raw.split(','))]
  if (topics.length > max) throw new RelayError('INVALID_TOPIC', `at most ${max} topics per connection`)
  const bad = topics.find((t: string) => !v.is(Topic, t)) as string | undefined
  if (bad !== undefined) throw new RelayError('INVALID_TOPIC', `invalid topic ${JSON.stringify(bad.slice(0, 140))}`)
  return topics
}

const parseLastEventId = (raw: string | undefined): number | undefined => {
  if (raw === undefined || raw === '') return undefined
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n))
    throw new RelayError('INVALID_LAST_EVENT_ID', 'Last-Event-ID must be a non-negative integer seq')
  return n
}

/** The edge: routes, auth and one error handler. Runtime-neutral — the platform files choose rooms and serve it. */
export const createApp = ({ rooms, auth, config, log = () => {}, streams = readableStreams(rooms), hmac }: AppDeps) => {
  const retryMs = config.retryMs ?? DEFAULTS.retryMs
  const windowS = config.signatureWindowS ?? DEFAULTS.signatureWindowS
  const maxPublishBytes = config.maxPublishBytes ?? DEFAULTS.maxPublishBytes
  const maxTopics = config.maxTopics ?? DEFAULTS.maxTopics
  const maxQueryBytes = config.maxQueryBytes ?? DEFAULTS.maxQueryBytes
  const maxEventBytes = config.maxEventBytes ?? DEFAULTS.maxEdgeEventBytes
  const limits = new ConnectionLimits({
    perTenant: config.maxConnectionsPerTenant ?? DEFAULTS.maxConnectionsPerTenant,
    perSubject: config.maxConnectionsPerSubject ?? DEFAULTS.maxConnectionsPerSubject,
  })
  const replays = new ReplayCache(config.replayCacheEntries ?? DEFAULTS.replayCacheEntries, windowS)
  const app = new Hono()

  /** A relay request's body, once its signature is verified and was not seen before. */
  const signedBody = async (c: Context, notJson: string): Promise<unknown> => {
    const text = await c.req.text()
    const check = await verifySignature(config.relaySecret, c.req.header(HEADERS.signature), text, windowS, undefined, hmac)
    if (!check.ok) throw new RelayError('SIGNATURE_INVALID', check.reason)
    replays.admit(check.mac, check.t)
    return parseJsonBody(text, notJson)
  }

  /** Who the request's token speaks for, if it may see `tenant`. */
  const principalFor = async (req: Parameters<typeof tokenWithSource>[0], tenant: string) => {
    const { token, from } = tokenWithSource(req)
    const claims = await auth.verify(token)
    if (from === 'query' && claims.kind !== 'ticket' && config.queryTicketsOnly)
      throw new RelayError('TOKEN_INVALID', 'app tokens do not belong in URLs: exchange yours at POST /v1/tickets and put the ticket in access_token')
    if (claims.tenant !== tenant) throw new RelayError('TENANT_FORBIDDEN', `token is not valid for tenant ${tenant}`)
    return claims
  }

  if (config.corsOrigins?.length)
    app.use(
      '/v1/*',
      cors({
        origin: [...config.corsOrigins],
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: ['authorization', 'content-type', 'last-event-id'],
        credentials: true, // the token cookie
        maxAge: 600,
      }),
    )

  // Before anything parses the query: an absurd query string costs nothing past this point.
  app.use('*', async (c, next) => {
    const q = c.req.url.indexOf('?')
    if (q !== -1 && c.req.url.length - q - 1 > maxQueryBytes)
      throw new RelayError('QUERY_TOO_LONG', `query string over ${maxQueryBytes} bytes: ask for fewer topics, or send the token in a header`)
    await next()
  })

  app.get(PATHS.health, (c) => c.json({ ok: true }))

  app.get('/v1/tenants/:tenant/events', async (c) => {
    // Hono answers HEAD with the GET handler minus the body: here that would hold a subscription nobody reads.
    if (c.req.method === 'HEAD') throw new RelayError('METHOD_NOT_ALLOWED', 'the events stream is GET only', { allow: 'GET' })
    const tenant = parseTenant(c.req.param('tenant'))
    const requested = parseTopics(c.req.query(QUERY.topics), maxTopics)
    const lastEventId = parseLastEventId(c.req.header(HEADERS.lastEventId) ?? c.req.query(QUERY.lastEventId))
    const claims = await principalFor(c.req, tenant)
    const denied = requested?.find((t) => !grantsAllow(claims.topics, t))
    if (denied) throw new RelayError('TOPIC_FORBIDDEN', `token does not grant topic ${denied}`)
    const presence = c.req.query(QUERY.presence) === '1' ? { presence: true } : {}
    const release = limits.acquire(tenant, claims.sub)
    const request: ConnectRequest = { topics: { requested, grants: claims.topics }, lastEventId, retryMs, expiresAt: claims.expiresAt, ...presence }
    try {
      return await streams(c, tenant, request, release)
    } catch (err) {
      release()
      throw err
    }
  })

  app.get('/v1/tenants/:tenant/presence', async (c) => {
    const tenant = parseTenant(c.req.param('tenant'))
    const claims = await principalFor(c.req, tenant)
    c.header('cache-control', 'no-store')
    return c.json(await rooms.get(tenant).presence(claims.topics))
  })

  ticketRoute(app, auth, { maxTopics })

  app.post(
    PATHS.publish,
    bodyLimit({
      maxSize: maxPublishBytes,
      onError: () => {
        throw new RelayError('TOO_LARGE', `publish body over ${maxPublishBytes} bytes: send smaller batches`, UNREAD_BODY)
      },
    }),
    async (c) => {
      const parsed = v.safeParse(PublishBody, await signedBody(c, 'publish body is not JSON'))
      if (!parsed.success) throw new RelayError('INVALID_BODY', v.summarize(parsed.issues))
      checkBatch(parsed.output, maxEventBytes)
      return c.json(await rooms.get(parsed.output.tenant).publish(parsed.output))
    },
  )

  // The relay asks this every sweep: a new instance means rooms in memory restarted empty (see HelloReply).
  app.post(PATHS.hello, bodyLimit({ maxSize: 1024, onError: () => { throw new RelayError('TOO_LARGE', 'hello body over 1 KiB', UNREAD_BODY) } }), async (c) => {
    const parsed = v.safeParse(HelloBody, await signedBody(c, 'hello body is not JSON'))
    if (!parsed.success) throw new RelayError('INVALID_BODY', v.summarize(parsed.issues))
    return c.json({ instance: rooms.instance })
  })

  app.notFound((c) => c.json(new RelayError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`).toJSON(), 404))

  app.onError((err, c) => {
    if (err instanceof RelayError) return c.json(err.toJSON(), err.status as 400, err.headers)
    log('error', 'unhandled error', { err: String((err as Error)?.stack ?? err), url: redactUrl(c.req.url) })
    return c.json(new RelayError('INTERNAL', 'internal error').toJSON(), 500)
  })

  return app
}
