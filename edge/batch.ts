import { RelayError } from '../shared/errors.ts'
import type { PublishBody } from '../shared/schema.ts'

const utf8 = new TextEncoder()

/**
 * What a relay batch must satisfy beyond its schema, on every path into a room (the signed POST, and the relay in
 * the same process): contiguous seqs, and each event's data within the edge's limit. A refused event is answered
 * TOO_LARGE / INVALID_BODY, which the relay turns into a marker frame instead of retrying forever.
 */
export const checkBatch = ({ events }: PublishBody, maxEventBytes: number): void => {
  for (let i = 1; i < events.length; i++)
    if (events[i]!.seq !== events[i - 1]!.seq + 1) throw new RelayError('INVALID_BODY', 'events must have contiguous seqs')
  for (const e of events) {
    // UTF-8 is at most 3 bytes per UTF-16 unit: encode only when the length alone cannot decide.
    if (e.data.length * 3 > maxEventBytes && utf8.encode(e.data).byteLength > maxEventBytes)
      throw new RelayError(
        'TOO_LARGE',
        `event ${e.seq} is over ${maxEventBytes} bytes: raise the edge's EDGE_MAX_EVENT_BYTES or publish less`,
      )
  }
}
