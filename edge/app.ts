import { Hono } from 'hono'
import { cors } from 'hono/cors'
import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { parseJsonBody } from '../shared/json.ts'
import type { Log } from '../shared/log.ts'
import { HEADERS, MAX_QUERY_BYTES, maxPublishBytes, PATHS, QUERY, SIGNATURE_WINDOW_S } from '../shared/protocol.ts'
import { redactUrl } from '../shared/redact.ts'
import { HelloBody, PublishBody, TenantId, Topic } from '../shared/schema.ts'
import { verify as verifySignature, type Hmac } from '../shared/sign.ts'
import { tokenWithSource, type Auth } from './auth.ts'
import { checkBatch } from './batch.ts'
import type { EdgeSettings } from './config.ts'
import { limitBody, type ConnectionLimits } from './limits.ts'
import type { ReplayCache } from './signature-replay.ts'
import { ticketRoute } from './ticket-route.ts'
import { jitteredRetryMs } from './room/stream.ts'
import { grantsAllow } from './room/topics.ts'
import type { ConnectRequest, Rooms } from './room/stub.ts'
import type { Context } from 'hono'

/** What the routes read of the edge's settings. */
export type AppSettings = Pick<
  EdgeSettings,
  'RELAY_SECRET' | 'EDGE_MAX_TOPICS' | 'EDGE_MAX_EVENT_BYTES' | 'EDGE_CORS_ORIGINS' | 'EDGE_QUERY_TOKENS'
>

/** What the routes work with: built from the settings by createEdge (edge/create.ts), or one by one in a test. */
export interface AppParts {
  rooms: Rooms
  auth: Auth
  limits: ConnectionLimits
  replays: ReplayCache
  /** How an authorised stream is served, chosen once by the platform (Node writes to the socket: node-sse.ts). */
  streams: StreamServer
  /** The relay signature's HMAC (unset: Web Crypto; Node passes node:crypto's, which needs no threadpool hop). */
  hmac?: Hmac
  /** Told of every unexpected error (the response is a 500 either way). */
  log: Log
}

/**
 * See AppParts.streams. Called after auth and limits; throwing a RelayError still answers with the JSON error.
 * `ended` must be called once when a stream it served ends, for any reason (it releases the connection slot).
 */
export type StreamServer = (c: Context, tenant: string, request: ConnectRequest, ended: () => void) => Response | Promise<Response>

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

const parseSigned = <S extends v.GenericSchema>(schema: S, body: unknown): v.InferOutput<S> => {
  const parsed = v.safeParse(schema, body)
  if (!parsed.success) throw new RelayError('INVALID_BODY', v.summarize(parsed.issues))
  return parsed.output
}

const parseLastEventId = (raw: string | undefined): number | undefined => {
  if (raw === undefined || raw === '') return undefined
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n)) throw new RelayError('INVALID_LAST_EVENT_ID', 'Last-Event-ID must be a non-negative integer seq')
  return n
}

/**
 * The edge's routes and one error handler, runtime-neutral: createEdge builds the parts from the settings, and the
 * platform files serve the result.
 */
export const createApp = (settings: AppSettings, { rooms, auth, limits, replays, streams, hmac, log }: AppParts) => {
  const { EDGE_MAX_TOPICS: maxTopics, EDGE_MAX_EVENT_BYTES: maxEventBytes } = settings
  const maxBodyBytes = maxPublishBytes(maxEventBytes)
  const app = new Hono()

  /** A relay request's body, once its signature is verified and was not seen before. */
  const signedBody = async (c: Context, notJson: string): Promise<unknown> => {
    const text = await c.req.text()
    const check = await verifySignature(settings.RELAY_SECRET, c.req.header(HEADERS.signature), text, SIGNATURE_WINDOW_S, undefined, hmac)
    if (!check.ok) throw new RelayError('SIGNATURE_INVALID', check.reason)
    replays.admit(check.mac, check.t)
    return parseJsonBody(text, notJson)
  }

  /** Who the request's token speaks for, if it may see `tenant`. */
  const principalFor = async (req: Parameters<typeof tokenWithSource>[0], tenant: string) => {
    const { token, from } = tokenWithSource(req)
    const claims = await auth.verify(token)
    const tip = 'exchange yours at POST /v1/tickets and put the ticket in access_token'
    if (from === 'query' && claims.kind !== 'ticket' && settings.EDGE_QUERY_TOKENS === 'ticket')
      throw new RelayError('TOKEN_INVALID', `app tokens do not belong in URLs: ${tip}`)
    if (claims.tenant !== tenant) throw new RelayError('TENANT_FORBIDDEN', `token is not valid for tenant ${tenant}`)
    return claims
  }

  if (settings.EDGE_CORS_ORIGINS.length)
    app.use(
      '/v1/*',
      cors({
        origin: [...settings.EDGE_CORS_ORIGINS],
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: ['authorization', 'content-type', 'last-event-id'],
        credentials: true, // the token cookie
        maxAge: 600,
      }),
    )

  // Before anything parses the query: an absurd query string costs nothing past this point.
  app.use('*', async (c, next) => {
    const q = c.req.url.indexOf('?')
    const tip = 'ask for fewer topics, or send the token in a header'
    if (q !== -1 && c.req.url.length - q - 1 > MAX_QUERY_BYTES)
      throw new RelayError('QUERY_TOO_LONG', `query string over ${MAX_QUERY_BYTES} bytes: ${tip}`)
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
    const request: ConnectRequest = {
      topics: { requested, grants: claims.topics },
      lastEventId,
      retryMs: jitteredRetryMs(),
      expiresAt: claims.expiresAt,
      ...presence,
    }
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

  app.post(PATHS.publish, limitBody(maxBodyBytes, 'publish', ': send smaller batches'), async (c) => {
    const body = parseSigned(PublishBody, await signedBody(c, 'publish body is not JSON'))
    checkBatch(body, maxEventBytes)
    return c.json(await rooms.get(body.tenant).publish(body))
  })

  // The relay asks this every sweep: a new instance means rooms in memory restarted empty (see HelloReply).
  app.post(PATHS.hello, limitBody(1024, 'hello'), async (c) => {
    parseSigned(HelloBody, await signedBody(c, 'hello body is not JSON'))
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
