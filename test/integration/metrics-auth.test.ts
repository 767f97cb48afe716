/** EDGE_METRICS_TOKEN: the Node edge's GET /metrics behind a bearer token when set, open when not. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadEdgeEnv } from '../../edge/config.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { edgeEnv } from '../support/stack.ts'
import { JWT_SECRET, RELAY_SECRET } from '../support/tokens.ts'

const TOKEN = 'metrics-token-0123456789abcdef'

let guarded: NodeEdge
let open: NodeEdge
beforeAll(async () => {
  guarded = await startNodeEdge(edgeEnv({ EDGE_METRICS_TOKEN: TOKEN }))
  open = await startNodeEdge(edgeEnv())
})
afterAll(async () => {
  await guarded?.close()
  await open?.close()
})

const scrape = async (edge: NodeEdge, authorization?: string) => {
  const res = await fetch(`${edge.url}/metrics`, authorization === undefined ? {} : { headers: { authorization } })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

describe('GET /metrics with EDGE_METRICS_TOKEN', () => {
  it('answers the right bearer token with Prometheus text', async () => {
    const res = await scrape(guarded, `Bearer ${TOKEN}`)
    expect(res.status).toBe(200)
    expect(res.type).toMatch(/^text\/plain/)
    expect(res.text).toMatch(/^# HELP edge_relay_edge_/m)
  })

  it('refuses a missing, wrong or malformed token with a JSON 401', async () => {
    const missing = await scrape(guarded)
    expect(missing.status).toBe(401)
    expect(JSON.parse(missing.text)).toEqual({
      error: { code: 'TOKEN_MISSING', message: 'metrics need a token: send Authorization: Bearer <EDGE_METRICS_TOKEN>' },
    })
    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer short', `Basic ${TOKEN}`, TOKEN]) {
      const res = await scrape(guarded, authorization)
      expect(res.status, authorization).toBe(401)
      expect(JSON.parse(res.text).error.code, authorization).toBe('TOKEN_INVALID')
      expect(res.text).not.toContain('edge_relay_edge_')
    }
  })

  it('guards /metrics only: the rest of the edge is as before', async () => {
    expect((await fetch(`${guarded.url}/healthz`)).status).toBe(200)
    const stream = await fetch(`${guarded.url}/v1/tenants/t1/events`)
    expect(stream.status).toBe(401)
    expect(await stream.json()).toMatchObject({ error: { code: 'TOKEN_MISSING' } })
  })

  it('leaves /metrics open when unset (an empty value means unset)', async () => {
    const res = await scrape(open)
    expect(res.status).toBe(200)
    expect(res.text).toMatch(/^# HELP edge_relay_edge_/m)
    expect(loadEdgeEnv({ EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET, EDGE_METRICS_TOKEN: '' }).EDGE_METRICS_TOKEN).toBeUndefined()
  })

  it('refuses a token too short to be a secret at startup, naming the variable', () => {
    expect(() => loadEdgeEnv({ EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET, EDGE_METRICS_TOKEN: 'abc' })).toThrow(
      /EDGE_METRICS_TOKEN: must be at least 16 characters/,
    )
  })
})
