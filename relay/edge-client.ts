import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import * as v from 'valibot'
import { ERROR_STATUS, RelayError, type ErrorCode } from '../shared/errors.ts'
import { HEADERS, PATHS } from '../shared/protocol.ts'
import { HelloReply, PublishReply, type PublishBody } from '../shared/schema.ts'
import { nodeHmac } from '../shared/node/hmac.ts'
import { sign } from '../shared/sign.ts'

/**
 * POSTs over node:http(s) with keep-alive: the relay's hot path (a batch per tenant per nudge). Under load on the bench
 * machine undici's fetch cost ~1.6 ms of relay and ~1.2 ms of edge CPU per post, node:http ~0.4 and ~0.5 ms.
 */
const agents = {
  http: new HttpAgent({ keepAlive: true, maxFreeSockets: 64 }),
  https: new HttpsAgent({ keepAlive: true, maxFreeSockets: 64 }),
}

/** How long a POST to an edge may go unanswered before it counts as failed (and is retried). */
const TIMEOUT_MS = 10_000

const post = (url: string, headers: Record<string, string>, body: string, signal: AbortSignal | undefined) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const tls = url.startsWith('https:')
    const data = Buffer.from(body)
    const req = (tls ? httpsRequest : httpRequest)(url, {
      method: 'POST',
      agent: tls ? agents.https : agents.http,
      headers: { ...headers, 'content-length': String(data.byteLength) },
      signal,
      timeout: TIMEOUT_MS,
    })
    req.once('timeout', () => req.destroy(new Error(`no answer from the edge within ${TIMEOUT_MS} ms`)))
    req.once('error', reject)
    req.once('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.once('error', reject)
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }))
    })
    req.end(data)
  })

/** One signed POST to an edge; the reply's JSON, or the edge's own error (its code kept, so callers can tell why). */
const signedPost = async (url: string, secret: string, payload: object, signal: AbortSignal | undefined) => {
  // A fresh nonce per attempt: a retry of the same batch is a new signed request, never a "replay" to the edge.
  const text = JSON.stringify({ ...payload, nonce: crypto.randomUUID() })
  const headers = { 'content-type': 'application/json', [HEADERS.signature]: await sign(secret, text, undefined, nodeHmac) }
  const res = await post(url, headers, text, signal)
  if (res.status !== 200) throw edgeRefusal(res.status, res.text)
  try {
    return JSON.parse(res.text) as unknown
  } catch {
    throw new RelayError('NOT_READY', `edge sent a reply that is not JSON: ${res.text.slice(0, 300)}`)
  }
}

/** An edge's error answer as a RelayError with the edge's code (a proxy's page in front of it: by status). */
const edgeRefusal = (status: number, text: string): RelayError => {
  let code: string | undefined
  let message = text.slice(0, 300)
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } }
    code = body.error?.code
    message = body.error?.message ?? message
  } catch {
    // not our JSON error body
  }
  const known = code !== undefined && code in ERROR_STATUS ? (code as ErrorCode) : status === 413 ? 'TOO_LARGE' : 'NOT_READY'
  return new RelayError(known, `edge answered ${status}: ${message}`)
}

/** Posts one signed batch to an edge and returns the room's head. Throws on any failure (the caller retries). */
export const postBatch = async (edgeUrl: string, secret: string, body: PublishBody, signal?: AbortSignal): Promise<PublishReply> => {
  const reply = await signedPost(edgeUrl + PATHS.publish, secret, body, signal)
  const parsed = v.safeParse(PublishReply, reply)
  if (!parsed.success || parsed.output.tenant !== body.tenant)
    throw new RelayError('NOT_READY', `edge sent an unexpected reply: ${JSON.stringify(reply).slice(0, 300)}`)
  return parsed.output
}

/** Asks an edge which set of rooms it serves (see HelloReply): a new instance means its rooms may have restarted empty. */
export const postHello = async (edgeUrl: string, secret: string, signal?: AbortSignal): Promise<HelloReply> => {
  const reply = await signedPost(edgeUrl + PATHS.hello, secret, {}, signal)
  const parsed = v.safeParse(HelloReply, reply)
  if (!parsed.success) throw new RelayError('NOT_READY', `edge sent an unexpected hello: ${JSON.stringify(reply).slice(0, 300)}`)
  return parsed.output
}

/** The log line for a failed request to an edge: a refusal says what to fix, unreachability says so. */
export const describeFailure = (err: unknown): string => {
  if (!(err instanceof RelayError)) return 'edge unreachable; retrying'
  switch (err.code) {
    case 'SIGNATURE_INVALID':
    case 'SIGNATURE_REPLAYED':
      return "edge refused the signature: does RELAY_SECRET match the edge's? retrying"
    case 'NOT_FOUND':
      return "edge has no such route (404): is EDGE_URL the edge's base URL, and is the edge as new as this relay? retrying"
    case 'TOO_MANY':
      return 'edge is rate limiting publishes (429); retrying'
    case 'TOO_LARGE':
    case 'INVALID_BODY':
      return `edge refused the request body (${err.code}); retrying`
    default:
      return `edge answered ${err.status} ${err.code}; retrying`
  }
}
