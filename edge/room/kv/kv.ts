/**
 * The part of a Deno KV handle that KV rooms use, as a structural type: `Deno.openKv()` gives one on Deno (the
 * only file that calls it is edge/platform/deno.ts), and the npm package `@deno/kv` gives one in Node (the tests).
 */

/** A key as KV rooms write them: strings and numbers (a number sorts numerically). */
export type KvKey = readonly (string | number)[]

/** What a read answers: a missing key has a null value and versionstamp. */
export interface KvEntryMaybe<T> {
  readonly key: readonly unknown[]
  readonly value: T | null
  readonly versionstamp: string | null
}

export interface KvCheck {
  key: KvKey
  /** null: the key must not exist. */
  versionstamp: string | null
}

export interface KvAtomic {
  check(...checks: KvCheck[]): KvAtomic
  set(key: KvKey, value: unknown, options?: { expireIn?: number }): KvAtomic
  delete(key: KvKey): KvAtomic
  /** `ok: false` when a check failed (nothing was written). */
  commit(): Promise<{ ok: boolean; versionstamp?: string }>
}

export interface Kv {
  get<T>(key: KvKey): Promise<KvEntryMaybe<T>>
  /** Keys from `start` (included) to `end` (excluded), in key order. */
  list<T>(selector: { start: KvKey; end: KvKey }, options?: { limit?: number; batchSize?: number }): AsyncIterable<KvEntryMaybe<T>>
  atomic(): KvAtomic
  /** The keys' entries whenever one changes (changes may be coalesced: the latest state, not every state). */
  watch(keys: KvKey[]): ReadableStream<readonly KvEntryMaybe<unknown>[]>
}

/**
 * Deno KV's limits (docs.deno.com/deploy/kv/transactions#limits; the local backend enforces the same): a value of at
 * most 64 KiB, and per atomic operation at most 1000 mutations, 80 KiB of keys and 800 KiB of keys and values.
 */
export const KV_LIMITS = {
  valueBytes: 65_536,
  mutations: 1000,
  keyBytes: 81_920,
  mutationBytes: 819_200,
  /** Entries one list call reads per round trip. */
  listBatch: 1000,
} as const
