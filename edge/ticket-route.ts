import type { Hono } from 'hono'
import * as v from 'valibot'
import { RelayError } from '../shared/errors.ts'
import { parseJsonBody } from '../shared/json.ts'
import { PATHS, QUERY } from '../shared/protocol.ts'
import { TicketRequest, type TicketReply } from '../shared/schema.ts'
import { bearerToken, type Auth } from './auth.ts'
import { limitBody } from './limits.ts'
import { grantsAllow } from './room/topics.ts'

/** Reads `{tenant?, topics?}` from a JSON body, or `?topics=a,b` when there is no body. */
const readRequest = async (c: { req: { text(): Promise<string>; query(n: string): string | undefined } }): Promise<TicketRequest> => {
  const text = await c.req.text()
  const topics = c.req.query(QUERY.topics)
  const raw: unknown =
    text.trim() !== ''
      ? parseJsonBody(text, 'ticket request body must be JSON: {"topics": ["a", "b*"]}')
      : topics
        ? { topics: topics.split(',') }
        : {}
  const parsed = v.safeParse(TicketRequest, raw)
  if (!parsed.success) throw new RelayError('INVALID_TOPIC', `invalid ticket request: ${v.summarize(parsed.issues)}`)
  return parsed.output
}

/**
 * `POST /v1/tickets`: an app token in the Authorization header (never in a URL) buys a ticket — seconds-lived, scoped
 * to the token's tenant and a subset of its topics — that a browser puts in `?access_token=` for EventSource.
 */
export const ticketRoute = (app: Hono, auth: Auth, o: { maxTopics: number }) => {
  app.post(PATHS.tickets, limitBody(16 * 1024, 'ticket request'), async (c) => {
    const authz = c.req.header('authorization')
    if (!authz) throw new RelayError('TOKEN_MISSING', 'send the app token as Authorization: Bearer <token>')
    const principal = await auth.verifyApp(bearerToken(authz))
    // The clock-skew allowance forgives the edge's drift, not an expired token: a ticket from it would be dead on
    // arrival (a ticket never outlives its app token), and a stream opened with it would end at once with reauth.
    if (principal.expiresAt <= Date.now())
      throw new RelayError('TOKEN_EXPIRED', 'app token expired: fetch a new token from your app, then ask for a ticket again')
    const req = await readRequest(c)
    if (req.tenant !== undefined && req.tenant !== principal.tenant)
      throw new RelayError('TENANT_FORBIDDEN', `token is not valid for tenant ${req.tenant}`)
    const topics = req.topics && [...new Set(req.topics)]
    if (topics && topics.length > o.maxTopics)
      throw new RelayError('INVALID_TOPIC', `at most ${o.maxTopics} topics per ticket (EDGE_MAX_TOPICS): ask for fewer`)
    // A requested `prefix*` is covered by a grant `p*` when it starts with p: grantsAllow reads it as a topic.
    const denied = topics?.find((t) => !grantsAllow(principal.topics, t))
    if (denied) throw new RelayError('TOPIC_FORBIDDEN', `token does not grant topic ${denied}`)
    // No topics asked for: the ticket inherits the token's grants, and the same limit holds for those.
    const scope = topics ?? (principal.topics && [...new Set(principal.topics)])
    const over = `over the limit of ${o.maxTopics} per ticket (EDGE_MAX_TOPICS): ask for at most ${o.maxTopics} of them in topics`
    if (scope && scope.length > o.maxTopics) throw new RelayError('INVALID_TOPIC', `token grants ${scope.length} topics, ${over}`)
    const issued = await auth.issueTicket(principal, scope)
    const reply: TicketReply = {
      ticket: issued.ticket,
      tenant: principal.tenant,
      ...(scope ? { topics: [...scope] } : {}),
      expiresAt: issued.expiresAt,
      streamExpiresAt: principal.expiresAt,
    }
    // A ticket is a credential: never cached by a browser or a proxy.
    return c.json(reply, 200, { 'cache-control': 'no-store' })
  })
}
