import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { HEADERS, PATHS } from '../shared/protocol.ts'
import { PublishReply, type PublishBody } from '../shared/schema.ts'
import { nodeHmac } from '../edge/platform/node-hmac.ts'
import { sign } from '../shared/sign.ts'
import { post } from './http-post.ts'

/** Posts one signed batch to an edge and returns the room's head. Throws on any failure (the caller retries). */
export const postBatch = async (
  edgeUrl: string,
  secret: string,
  body: PublishBody,
  signal?: AbortSignal,
  timeoutMs = 10_000,
): Promise<PublishReply> => {
  // A fresh nonce per attempt: a retry of the same batch is a new signed request, never a "replay" to the edge.
  const text = JSON.stringify({ ...body, nonce: crypto.randomUUID() })
  const headers = { 'content-type': 'application/json', [HEADERS.signature]: await sign(secret, text, undefined, nodeHmac) }
  const res = await post(edgeUrl + PATHS.publish, headers, text, signal, timeoutMs)
  const reply = res.text
  if (res.status !== 200) throw new RelayError('NOT_READY', `edge answered ${res.status}: ${reply.slice(0, 300)}`)
  const parsed = v.safeParse(PublishReply, JSON.parse(reply))
  if (!parsed.success || parsed.output.tenant !== body.tenant)
    throw new RelayError('NOT_READY', `edge sent an unexpected reply: ${reply.slice(0, 300)}`)
  return parsed.output
}
