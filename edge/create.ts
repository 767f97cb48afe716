import { SIGNATURE_WINDOW_S } from '../shared/protocol.ts'
import { log as jsonLog, type Log } from '../shared/log.ts'
import type { Hmac } from '../shared/sign.ts'
import { createApp, SSE_HEADERS, type StreamServer } from './app.ts'
import { createAuth } from './auth.ts'
import type { EdgeSettings } from './config.ts'
import { checkPublicKey } from './keys.ts'
import { ConnectionLimits } from './limits.ts'
import { REPLAY_CACHE_ENTRIES, ReplayCache } from './signature-replay.ts'
import type { Rooms } from './room/stub.ts'

/** What a runtime brings to the edge (edge/platform/*): where rooms live, and how it serves streams and logs. */
export interface Platform {
  rooms: Rooms
  /** How authorised streams are served (Node: nodeStreams); unset: the room stub's ReadableStream as the body. */
  streams?: StreamServer
  /** The relay signature's HMAC (unset: Web Crypto). */
  hmac?: Hmac
  /** Unset: JSON lines on stdout/stderr (shared/log.ts). */
  log?: Log
}

/** The portable way to serve a stream: the room stub's ReadableStream as the response body. */
export const readableStreams =
  (rooms: Rooms): StreamServer =>
  async (c, tenant, request, ended) =>
    new Response(await rooms.get(tenant).connect(request, { signal: c.req.raw.signal, ended }), { headers: SSE_HEADERS })

/**
 * The edge's Hono app from its validated settings, on any runtime: auth, connection limits and the replay cache are
 * built here; the platform gives its rooms (and on Node its stream server). A configured EDGE_JWT_PUBLIC_KEY is
 * imported first, so a bad key fails the start (on Workers, the first request) rather than every token check.
 * @throws RelayError CONFIG_INVALID for a public key that does not import
 */
export const createEdge = async (settings: EdgeSettings, platform: Platform) => {
  await checkPublicKey(settings.EDGE_JWT_PUBLIC_KEY)
  return createApp(settings, {
    ...platform,
    log: platform.log ?? jsonLog,
    auth: createAuth(settings),
    limits: new ConnectionLimits({
      perTenant: settings.EDGE_MAX_CONNECTIONS_PER_TENANT,
      perSubject: settings.EDGE_MAX_CONNECTIONS_PER_SUBJECT,
    }),
    replays: new ReplayCache(REPLAY_CACHE_ENTRIES, SIGNATURE_WINDOW_S),
    streams: platform.streams ?? readableStreams(platform.rooms),
  })
}

export type Edge = Awaited<ReturnType<typeof createEdge>>
