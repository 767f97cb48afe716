import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { PATHS } from '../shared/protocol.ts'

export interface HealthSource {
  health(): { ok: boolean } & Record<string, unknown>
}

/** The relay's own HTTP port: /healthz (200 when listening and leading, else 503). */
export const startRelayServer = (relay: HealthSource, port: number, host: string) => {
  const app = new Hono()
  app.get(PATHS.health, (c) => {
    const h = relay.health()
    return c.json(h, h.ok ? 200 : 503)
  })
  return new Promise<{ port: number; close(): Promise<void> }>((resolve) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, (info: { port: number }) =>
      resolve({ port: info.port, close: () => new Promise((done) => server.close(() => done())) }),
    )
  })
}
