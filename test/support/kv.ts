import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openKv } from '@deno/kv'
import type { Kv, KvAtomic } from '../../edge/room/kv/kv.ts'

/**
 * Deno KV in Node (the npm `@deno/kv`, the same SQLite backend as Deno's): handles opened on one path in one
 * process see each other's writes through watch, as instances of a Deno Deploy app share one KV.
 */
export const tempKv = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-kv-'))
  const path = join(dir, 'kv.sqlite3')
  const opened: { close(): void }[] = []
  return {
    path,
    /** A new handle on the same database (another "instance"). */
    async open(): Promise<Kv> {
      const kv = await openKv(path)
      opened.push(kv)
      return kv
    },
    close() {
      for (const kv of opened) kv.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** What a KV handle was asked, as Deno Deploy bills it: reads (get, list batches), atomic commits, mutations. */
export interface KvCounts {
  gets: number
  lists: number
  /** Entries read by list calls. */
  listed: number
  commits: number
  mutations: number
  /** Sets with an expiry, and the longest expiry asked (ms). */
  expiring: number
  expireIn: number
  watches: number
}

/** `kv` with every call counted into `counts` (`reset` zeroes them). */
export const countingKv = (kv: Kv) => {
  const counts: KvCounts = { gets: 0, lists: 0, listed: 0, commits: 0, mutations: 0, expiring: 0, expireIn: 0, watches: 0 }
  const atomic = (op: KvAtomic): KvAtomic => {
    const counted: KvAtomic = {
      check: (...c) => (op.check(...c), counted),
      set: (k, v, o) => {
        counts.mutations++
        if (o?.expireIn !== undefined) counts.expiring++, (counts.expireIn = Math.max(counts.expireIn, o.expireIn))
        op.set(k, v, o)
        return counted
      },
      delete: (k) => (counts.mutations++, op.delete(k), counted),
      commit: () => (counts.commits++, op.commit()),
    }
    return counted
  }
  const counted: Kv = {
    get: (key) => (counts.gets++, kv.get(key)),
    list: <T>(selector: Parameters<Kv['list']>[0], options?: Parameters<Kv['list']>[1]) => {
      counts.lists++
      const inner = kv.list<T>(selector, options)
      return {
        async *[Symbol.asyncIterator]() {
          for await (const entry of inner) yield (counts.listed++, entry)
        },
      }
    },
    atomic: () => atomic(kv.atomic()),
    watch: (keys) => (counts.watches++, kv.watch(keys)),
  }
  const reset = () => {
    for (const k of Object.keys(counts) as (keyof KvCounts)[]) counts[k] = 0
  }
  return { kv: counted, counts, reset }
}
