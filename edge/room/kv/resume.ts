/**
 * A resume older than an instance's copy of the history but still in KV (the copy is bounded in bytes as well,
 * and KV is not): the events the copy lacks are replayed from KV first, in rounds, then the subscriber joins the
 * room at the seq where the copy takes over. Exact either way: what neither holds gets `reset` from the room.
 */
import type { Log } from '../../../shared/log.ts'
import { planResume, REPLAY_ROUND_BYTES, REPLAY_ROUND_EVENTS, type Room, type Sink, type SubscribeOptions } from '../room.ts'
import { topicMatcher } from '../topics.ts'
import type { Kv } from './kv.ts'
import { readEvents } from './store.ts'

/** True when a resume after `after` needs events older than the room holds (the room alone would reset it). */
const beforeRoom = (room: Room, after: number) => room.first !== undefined && planResume(after, room.first, room.head).kind === 'reset'

/**
 * Room.subscribe, preceded by a replay from KV when `lastEventId` is older than the room's copy. Returns the
 * function that detaches the subscriber (also while the KV replay runs).
 */
export const subscribeFromKv = (kv: Kv, room: Room, options: SubscribeOptions, sink: Sink, log?: Log): (() => void) => {
  const from = options.lastEventId
  if (from === undefined || !beforeRoom(room, from)) return room.subscribe(options, sink)
  let left = false
  let detach: (() => void) | undefined
  const accepts = topicMatcher(options.topics)
  const replay = async () => {
    let after = from
    // The room's copy may lose its oldest events while this reads: check again after each round.
    rounds: while (!left && beforeRoom(room, after)) {
      const page = await readEvents(kv, room.tenant, after, Math.min(room.first! - 1, after + REPLAY_ROUND_EVENTS))
      if (left) return
      for (const e of page) {
        if (e.seq !== after + 1) break rounds // KV no longer has it either: the room answers with reset
        after = e.seq
        if (accepts(e.topic)) sink.write(e.frame, true)
      }
      if (page.length === 0) break
      if (sink.backlog >= REPLAY_ROUND_BYTES) await new Promise<void>((resolve) => sink.whenDrained(resolve))
    }
    if (!left) detach = room.subscribe({ ...options, lastEventId: after }, sink)
  }
  replay().catch((err: unknown) => {
    log?.('warn', 'a resume from KV failed; the client reconnects', { tenant: room.tenant, error: String(err) })
    if (!left) sink.close('end')
  })
  return () => {
    left = true
    detach?.()
  }
}
