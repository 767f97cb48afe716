import { backoffMs, sleep } from '../../../shared/backoff.ts'
import type { Tally } from '../presence.ts'
import type { ShardCount, ShardState } from './shards.ts'
import type { RoomSql } from './sqlite-history.ts'

/** A shard's owner as the shard calls it (RPC on its Durable Object stub). Structural. */
export interface OwnerStub {
  report(index: number, state: ShardState): Promise<void>
}

/** A failed report is tried this many times in all (with backoff); after that the next change, or the next feed's answer, tells. */
const TRIES = 8

/**
 * A shard's side of a sharded room (docs/cloudflare.md, Sharding): it tells its owner when its subscribers change (one report at a time,
 * the latest count), stamps each count so the owner keeps the newest, and keeps what the owner last told it of the rest of the room's
 * subscribers (SQLite, so its presence events count them after it wakes).
 */
export class OwnerLink {
  private version = 0
  /** The tally the owner last acknowledged (JSON). */
  private told = '{}'
  private sending = false
  private again = false
  private failures = 0

  constructor(
    private readonly sql: RoomSql,
    private readonly index: number,
    private readonly owner: () => OwnerStub,
    /** The shard's subscribers and head now. */
    private readonly state: () => { tally: Tally; head: number },
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS room_others (id INTEGER PRIMARY KEY CHECK (id = 0), tally TEXT NOT NULL)`)
  }

  /** What the owner last said the rest of the room holds. */
  get others(): Tally {
    const row = this.sql.exec(`SELECT tally FROM room_others WHERE id = 0`).toArray()[0]
    return row ? (JSON.parse(String(row.tally)) as Tally) : {}
  }

  set others(tally: Tally) {
    this.sql.exec(`INSERT OR REPLACE INTO room_others (id, tally) VALUES (0, ?)`, JSON.stringify(tally))
  }

  /** The owner already knows these subscribers (a shard waking from hibernation rebuilt what it had reported). */
  settled(): void {
    this.told = JSON.stringify(this.state().tally)
  }

  /** The subscribers now, stamped: later counts have larger versions, also after a restart (they start at the clock). */
  count(): ShardCount {
    this.version = Math.max(this.version + 1, Date.now())
    return { tally: this.state().tally, version: this.version }
  }

  /** The subscribers may have changed: the owner is told, unless it knows already. */
  changed(): void {
    if (this.sending) return void (this.again = true)
    const state = { ...this.count(), head: this.state().head }
    const json = JSON.stringify(state.tally)
    if (json === this.told) return
    this.sending = true
    this.owner()
      .report(this.index, state)
      .then(
        () => {
          this.told = json
          this.failures = 0
        },
        async () => {
          // The owner is away (a deploy, a restart): try again, then leave it to the next change.
          if (++this.failures < TRIES) {
            this.again = true
            await sleep(backoffMs(this.failures))
          } else this.failures = 0
        },
      )
      .finally(() => {
        this.sending = false
        if (this.again) {
          this.again = false
          this.changed()
        }
      })
  }
}
