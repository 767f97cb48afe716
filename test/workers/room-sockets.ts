import { env } from 'cloudflare:workers'
import { runInDurableObject } from 'cloudflare:test'
import type { Env } from '../../edge/platform/workers.ts'
import type { RoomSocket } from '../../edge/room/durable/socket-sink.ts'
import type { WireEvent } from '../../shared/schema.ts'

const ns = (env as unknown as Env).ROOMS

export const ev = (seq: number): WireEvent => ({ seq, topic: 't', data: JSON.stringify({ seq }), ts: Date.now() })
export const batch = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => ev(from + i))

/** A subscriber's socket as the room sees it: records what the room sends, keeps its attachment. */
export const roomSocket = () => {
  const sent: string[] = []
  let attachment: unknown = null
  const ws: RoomSocket = {
    send: (m) => void sent.push(typeof m === 'string' ? m : new TextDecoder().decode(m)),
    close: () => {},
    serializeAttachment: (v) => void (attachment = structuredClone(v)),
    deserializeAttachment: () => attachment,
  }
  const seqs = () => sent.flatMap((m) => [...m.matchAll(/^id: (\d+)$/gm)].map((x) => Number(x[1])))
  return { ws, sent, seqs, last: () => sent.at(-1) }
}

/** A room object on a real Durable Object's SQLite (an object of its own, used by no other test). */
export const withRoomObject = (name: string, fn: (sql: DurableObjectStorage['sql']) => Promise<void>) =>
  runInDurableObject(ns.get(ns.idFromName(`${name}-${crypto.randomUUID().slice(0, 8)}`)), (_, state) => fn(state.storage.sql))

/** A room fans a batch out after answering it (a timer), and the frames of a turn leave together (a microtask): wait for one turn. */
export const turn = () => new Promise((resolve) => setTimeout(resolve, 0))
