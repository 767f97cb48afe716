/**
 * A tenant's history in Deno KV, shared by every instance of the edge: the keys, and every read and write KV rooms
 * make. One head per tenant, `['er', tenant, 'head']` → {seq, base}, never expiring; one key per event,
 * `['er', tenant, 'ev', seq]` → {topic, ts, frame}, the SSE frame encoded once by the instance that took the batch,
 * expiring after HISTORY_MAX_AGE_S, deleted when HISTORY_LIMIT newer ones follow it.
 */
import { RelayError } from '../../../shared/errors.ts'
import type { PublishBody, TenantId } from '../../../shared/schema.ts'
import { type StoredEvent, storedEvent } from '../history.ts'
import { takeable } from '../room.ts'
import { KV_LIMITS, type Kv, type KvAtomic, type KvKey } from './kv.ts'

/** The head of a tenant's history: its newest seq, and the seq its contiguous run starts at (moved by a rebase). */
export interface KvHead {
  seq: number
  base: number
}

/** What an event's key holds. */
interface KvEvent {
  topic: string
  ts: number
  frame: Uint8Array
}

export interface KvHistoryBounds {
  /** Events kept per tenant (HISTORY_LIMIT). */
  limit: number
  /** How long an event is kept, ms (HISTORY_MAX_AGE_S; 0: until `limit` newer ones push it out). */
  maxAgeMs: number
}

const ROOT = 'er'
/** The rooms' instance id (POST /internal/hello), one for every edge instance on this KV. */
const instanceKey: KvKey = [ROOT, 'instance']
export const headKey = (tenant: TenantId): KvKey => [ROOT, tenant, 'head']
export const eventKey = (tenant: TenantId, seq: number): KvKey => [ROOT, tenant, 'ev', seq]

const EMPTY_HEAD: KvHead = { seq: 0, base: 1 }

/** A key's encoded size, at most: each part a tag and a terminator, a seq 9 bytes (tenants are ASCII). */
const keyBytes = (tenant: TenantId) => tenant.length + 32
/** An event's stored size, at most: its frame and topic plus what V8 serialisation adds (measured under 60). */
const VALUE_OVERHEAD = 128
const valueBytes = (e: StoredEvent) => e.frame.byteLength + e.topic.length + VALUE_OVERHEAD

/**
 * The largest frame a KV room stores for a topic: what fits one KV value. Larger events are refused as TOO_LARGE,
 * which the relay delivers as an `oversize` marker, as for one over EDGE_MAX_EVENT_BYTES.
 */
export const maxFrameBytes = (topic: string) => KV_LIMITS.valueBytes - topic.length - VALUE_OVERHEAD

const stored = (e: StoredEvent): KvEvent => ({ topic: e.topic, ts: e.ts, frame: e.frame })

export const readHead = async (kv: Kv, tenant: TenantId): Promise<{ head: KvHead; versionstamp: string | null }> => {
  const entry = await kv.get<KvHead>(headKey(tenant))
  return { head: entry.value ?? EMPTY_HEAD, versionstamp: entry.versionstamp }
}

/** The events held with `after` < seq ≤ `upTo`, oldest first (a seq that expired or was trimmed is missing). */
export const readEvents = async (kv: Kv, tenant: TenantId, after: number, upTo: number): Promise<StoredEvent[]> => {
  const out: StoredEvent[] = []
  if (upTo <= after) return out
  const selector = { start: eventKey(tenant, after + 1), end: eventKey(tenant, upTo + 1) }
  for await (const entry of kv.list<KvEvent>(selector, { batchSize: Math.min(KV_LIMITS.listBatch, upTo - after) })) {
    const seq = entry.key[3]
    if (entry.value && typeof seq === 'number') out.push({ seq, ...entry.value })
  }
  return out
}

/** The id every instance on this KV answers POST /internal/hello with: made once, kept with the history. */
export const kvInstance = async (kv: Kv): Promise<string> => {
  for (;;) {
    const entry = await kv.get<string>(instanceKey)
    if (typeof entry.value === 'string') return entry.value
    const id = `kv-${crypto.randomUUID()}`
    if ((await kv.atomic().check({ key: instanceKey, versionstamp: null }).set(instanceKey, id).commit()).ok) return id
  }
}

/** Splits events into runs that each fit one atomic operation with their count trims and the head. */
const runs = (tenant: TenantId, events: readonly StoredEvent[]): StoredEvent[][] => {
  const key = keyBytes(tenant)
  // Per event: its key and value, and the key of the event it trims. Per operation: the head's check and set.
  const budget = { mutations: KV_LIMITS.mutations - 1, keys: KV_LIMITS.keyBytes - 4 * key, bytes: KV_LIMITS.mutationBytes - 4 * key - 256 }
  const out: StoredEvent[][] = []
  let run: StoredEvent[] = []
  let used = { mutations: 0, keys: 0, bytes: 0 }
  for (const e of events) {
    const cost = { mutations: 2, keys: 2 * key, bytes: 2 * key + valueBytes(e) }
    if (
      run.length > 0 &&
      (used.mutations + cost.mutations > budget.mutations || used.keys + cost.keys > budget.keys || used.bytes + cost.bytes > budget.bytes)
    ) {
      out.push(run)
      run = []
      used = { mutations: 0, keys: 0, bytes: 0 }
    }
    run.push(e)
    used = { mutations: used.mutations + cost.mutations, keys: used.keys + cost.keys, bytes: used.bytes + cost.bytes }
  }
  if (run.length > 0) out.push(run)
  return out
}

/** Tries before a publish gives up to a writer that keeps moving the head (the relay retries a 503). */
const CONTENDED_TRIES = 8

export interface Appended {
  /** The tenant's head in KV after the batch. */
  head: number
  /** The events this call wrote, in order (the instance's own copy takes them at once). */
  written: StoredEvent[]
}

/**
 * Appends a relay batch with Room.publish's rules: seqs at or below the head are skipped, a gap is refused unless
 * `rebase`. Each run of events goes in one atomic operation checked against the head's versionstamp, with the
 * trims by count and the head's move: a reader never sees the head ahead of its events. A batch over one
 * operation's limits takes several, each moving the head (if one fails, the head tells the relay where to resume).
 * @throws RelayError TOO_LARGE for an event whose frame does not fit one KV value (before anything is written)
 */
export const appendBatch = async (kv: Kv, body: PublishBody, bounds: KvHistoryBounds): Promise<Appended> => {
  const { tenant } = body
  const written: StoredEvent[] = []
  for (let tries = 1; ; tries++) {
    let { head, versionstamp } = await readHead(kv, tenant)
    const take = takeable(body.events, head.seq, body.rebase === true)
    if (!take) return { head: head.seq, written }
    const events = take.fresh.map(storedEvent)
    for (const e of events)
      if (e.frame.byteLength > maxFrameBytes(e.topic))
        throw new RelayError(
          'TOO_LARGE',
          `event ${e.seq} is over the ${maxFrameBytes(e.topic)} bytes a Deno KV value holds once framed: publish less`,
        )
    const rebased = take.gap
    const base = rebased ? take.start : head.base
    let conflict = false
    for (const run of runs(tenant, events)) {
      const op = kv.atomic().check({ key: headKey(tenant), versionstamp })
      for (const e of run) write(op, tenant, e, bounds, base)
      const next: KvHead = { seq: run.at(-1)!.seq, base }
      const result = await op
        .set(headKey(tenant), next)
        .commit()
        .catch((err: unknown) => {
          // A KV file written by another handle at this moment (the local SQLite backend): as a lost check.
          if (!/database is locked/.test(String(err))) throw err
          return { ok: false as const, versionstamp: undefined }
        })
      if (!result.ok) {
        conflict = true // another instance moved the head (a resend racing the first try): read it again
        break
      }
      head = next
      versionstamp = result.versionstamp ?? null
      written.push(...run)
    }
    if (!conflict) {
      if (rebased) await dropBelow(kv, tenant, base)
      return { head: head.seq, written }
    }
    if (tries >= CONTENDED_TRIES) throw new RelayError('NOT_READY', `the KV head of tenant ${tenant} keeps moving: retry`)
    await new Promise((resolve) => setTimeout(resolve, tries * 5))
  }
}

/** One event's mutations: its value, and the deletion of the one `limit` older (trim by count). */
const write = (op: KvAtomic, tenant: TenantId, e: StoredEvent, bounds: KvHistoryBounds, base: number) => {
  op.set(eventKey(tenant, e.seq), stored(e), bounds.maxAgeMs > 0 ? { expireIn: bounds.maxAgeMs } : undefined)
  const old = e.seq - bounds.limit
  if (old >= base) op.delete(eventKey(tenant, old))
}

/** After a rebase, the events before it (never served again) are deleted, a few hundred per operation. */
const dropBelow = async (kv: Kv, tenant: TenantId, base: number) => {
  let op = kv.atomic()
  let n = 0
  for await (const entry of kv.list({ start: eventKey(tenant, 0), end: eventKey(tenant, base) }, { batchSize: 500 })) {
    op.delete(entry.key as KvKey)
    if (++n % 500 === 0) {
      await op.commit()
      op = kv.atomic()
    }
  }
  if (n % 500 !== 0) await op.commit()
}
