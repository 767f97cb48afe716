import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { portInUse } from '../shared/env.ts'
import { PATHS } from '../shared/protocol.ts'

export interface HealthSource {
  health(): { ok: boolean } & Record<string, unknown>
  metrics: { registry: { contentType: string; metrics(): Promise<string> } }
}

/** The relay's own HTTP port: /healthz (200 for a standby or a leader that listens or polls, else 503) and /metrics. */
export const startRelayServer = (relay: HealthSource, port: number, host: string) => {
  const app = new Hono()
  app.get(PATHS.health, (c) => {
    const h = relay.health()
    return c.json(h, h.ok ? 200 : 503)
  })
  app.get(PATHS.metrics, async (c) => {
    const { registry } = relay.metrics
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType })
  })
  return new Promise<{ port: number; close(): Promise<void> }>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, (info: { port: number }) =>
      resolve({ port: info.port, close: () => new Promise((done) => server.close(() => done())) }),
    )
    server.once('error', (err) => reject(portInUse(err, 'RELAY_PORT', port, host)))
  })
}
