import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openKv } from '@deno/kv'
import type { Kv } from '../../edge/room/kv/kv.ts'

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
