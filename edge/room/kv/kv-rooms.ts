/**
 * Rooms shared through Deno KV by every instance of a Deno edge (EDGE_ROOMS=kv; Deno Deploy runs several): the
 * relay's batch goes to KV (store.ts) whichever instance it reaches, and each instance with subscribers for a
 * tenant keeps a copy fed by a KV watch (mirror.ts). Presence counts this instance's subscribers only.
 */
import { RelayError } from '../../../shared/errors.ts'
import type { Log } from '../../../shared/log.ts'
import type { TenantId } from '../../../shared/schema.ts'
import type { EdgeSettings } from '../../config.ts'
import { heartbeats, localRoomParts } from '../memory-rooms.ts'
import { readableSink, runStream } from '../stream.ts'
import type { ConnectOptions, ConnectRequest, Rooms } from '../stub.ts'
import type { Kv } from './kv.ts'
import { Mirror } from './mirror.ts'
import { subscribeFromKv } from './resume.ts'
import { appendBatch, kvInstance } from './store.ts'

/** What KV rooms read of the edge's settings. */
export type KvRoomsSettings = Pick<
  EdgeSettings,
  'HISTORY_LIMIT' | 'HISTORY_MAX_BYTES' | 'HISTORY_MAX_AGE_S' | 'HEARTBEAT_MS' | 'SUBSCRIBER_QUEUE_BYTES'
>

interface KvRoomsOptions {
  log?: Log
  /** How long a tenant's copy outlives its last subscriber here (a reconnect within it needs no reload). */
  idleMs?: number
}

const KV_MIRROR_IDLE_MS = 30_000

/**
 * KV rooms over `kv` (Deno.openKv() on Deno, @deno/kv in tests). Async: the rooms' instance id is read from KV (or
 * made there), so that every instance on one KV answers POST /internal/hello alike.
 */
export const kvRooms = async (kv: Kv, settings: KvRoomsSettings, { log, idleMs = KV_MIRROR_IDLE_MS }: KvRoomsOptions = {}) => {
  const instance = await kvInstance(kv)
  const kept = { limit: settings.HISTORY_LIMIT, maxAgeMs: settings.HISTORY_MAX_AGE_S * 1000 }
  const { queue, onSlowDrop } = localRoomParts(settings, log)
  const mirrors = new Map<TenantId, Mirror>()

  const hold = (tenant: TenantId): Mirror => {
    let m = mirrors.get(tenant)
    if (!m) {
      const created = new Mirror({
        kv,
        tenant,
        kept,
        history: { limit: settings.HISTORY_LIMIT, bytes: settings.HISTORY_MAX_BYTES },
        log,
        onSlowDrop,
      })
      // A copy that failed to load is dropped: the next connection starts another.
      created.ready.catch(() => {
        if (mirrors.get(tenant) === created) mirrors.delete(tenant)
        created.close()
      })
      mirrors.set(tenant, (m = created))
    }
    m.users++
    clearTimeout(m.idle)
    m.idle = undefined
    return m
  }

  const release = (tenant: TenantId, m: Mirror) => {
    if (--m.users > 0) return
    m.idle = setTimeout(() => {
      if (m.users > 0) return
      if (mirrors.get(tenant) === m) mirrors.delete(tenant)
      m.close()
    }, idleMs)
    ;(m.idle as { unref?: () => void }).unref?.()
  }

  const timer = heartbeats(settings.HEARTBEAT_MS, function* () {
    for (const m of mirrors.values()) yield m.room
  })

  return {
    instance,
    get: (tenant: TenantId) => ({
      async publish(body) {
        const { head, written } = await appendBatch(kv, body, kept)
        // This instance's copy takes the batch now; the watch brings it to every other instance.
        const m = mirrors.get(tenant)
        if (m?.loaded && written.length > 0) m.room.publishFramed(written, false)
        return { tenant, head }
      },
      async connect(request: ConnectRequest, opts?: ConnectOptions) {
        const m = hold(tenant)
        try {
          await m.ready
        } catch (err) {
          release(tenant, m)
          log?.('warn', 'could not load a room from KV', { tenant, error: String(err) })
          throw new RelayError('NOT_READY', 'the room could not be loaded: retry')
        }
        let held = true
        return readableSink(
          queue,
          (sink) => runStream(sink, request, () => subscribeFromKv(kv, m.room, request, sink, log)),
          () => {
            if (held) (held = false), release(tenant, m)
            opts?.ended?.()
          },
        )
      },
      // Asking must not load a room: a tenant with no copy here has nobody connected here.
      presence: async (grants) => mirrors.get(tenant)?.room.presence(grants) ?? { tenant, subscribers: 0, topics: {} },
    }),
    /** This instance's copies, per tenant (diagnostics and tests). */
    mirrors,
    /** Subscribers of a tenant attached to this instance. */
    subscribers: (tenant: TenantId) => mirrors.get(tenant)?.room.size ?? 0,
    close() {
      clearInterval(timer)
      for (const m of mirrors.values()) m.close()
      mirrors.clear()
    },
  } satisfies Rooms & Record<string, unknown>
}

export type KvRooms = Awaited<ReturnType<typeof kvRooms>>
