import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRelayServer } from '../../relay/health-server.ts'
import { metricValue, scrape } from '../support/prom.ts'
import { startStack, type Stack } from '../support/stack.ts'

let s: Stack
let relayServer: Awaited<ReturnType<typeof startRelayServer>>
beforeAll(async () => {
  s = await startStack()
  relayServer = await startRelayServer(s.relay!, 0, '127.0.0.1')
})
afterAll(async () => {
  await relayServer?.close()
  await s?.stop()
})

describe('/metrics', () => {
  it('the edge and the relay serve Prometheus text whose counters move when events flow', async () => {
    const edgeUrl = `${s.edge.url}/metrics`
    const relayUrl = `http://127.0.0.1:${relayServer.port}/metrics`
    const edge0 = await scrape(edgeUrl)
    const relay0 = await scrape(relayUrl)
    expect(metricValue(edge0, 'edge_relay_edge_events_received_total', { tenant: 'm' })).toBe(0)
    expect(metricValue(relay0, 'edge_relay_leader')).toBe(1)
    expect(metricValue(relay0, 'edge_relay_listening')).toBe(1)
    expect(relay0.some((x) => x.name === 'edge_relay_notification_queue_usage')).toBe(true)

    const sub = await s.subscribe('m', { topics: 'orders' })
    const all = await s.subscribe('m', { lastEventId: 0 })
    for (let i = 0; i < 5; i++) await s.publish('m', 'orders', { i })
    await s.publish('m', 'users', { i: 5 })
    await sub.waitFor((m) => m.filter((x) => x.id).length === 5)
    await all.waitFor((m) => m.filter((x) => x.id).length === 6)

    const edge1 = await scrape(edgeUrl)
    expect(metricValue(edge1, 'edge_relay_edge_events_received_total', { tenant: 'm' })).toBe(6)
    expect(metricValue(edge1, 'edge_relay_edge_events_delivered_total', { tenant: 'm' })).toBe(11)
    expect(metricValue(edge1, 'edge_relay_edge_commit_lag_seconds_count')).toBe(6)
    expect(metricValue(edge1, 'edge_relay_edge_batch_events_sum')).toBeGreaterThanOrEqual(6)
    expect(metricValue(edge1, 'edge_relay_edge_subscribers', { tenant: 'm', topic: 'orders' })).toBe(1)
    expect(metricValue(edge1, 'edge_relay_edge_subscribers', { tenant: 'm', topic: '*' })).toBe(1)
    expect(metricValue(edge1, 'edge_relay_edge_connected', { tenant: 'm' })).toBe(2)
    expect(metricValue(edge1, 'edge_relay_edge_connections_total', { tenant: 'm', kind: 'resume' })).toBe(1)
    expect(metricValue(edge1, 'edge_relay_edge_slow_subscribers_dropped_total', { tenant: 'm' })).toBe(0)

    const relay1 = await scrape(relayUrl)
    expect(metricValue(relay1, 'edge_relay_events_delivered_total', { tenant: 'm', edge: s.edge.url })).toBe(6)
    expect(metricValue(relay1, 'edge_relay_events_read_total', { tenant: 'm' })).toBeGreaterThanOrEqual(6)
    expect(metricValue(relay1, 'edge_relay_commit_to_relay_seconds_count')).toBeGreaterThanOrEqual(6)
    expect(metricValue(relay1, 'edge_relay_relay_to_edge_seconds_count', { outcome: 'ok' })).toBeGreaterThanOrEqual(1)
    expect(metricValue(relay1, 'edge_relay_batch_events_sum')).toBeGreaterThanOrEqual(6)
    // The backlog reads the cursors in Postgres, which are saved just behind delivery: it reaches 0 a moment later.
    await expect
      .poll(async () => metricValue(await scrape(relayUrl), 'edge_relay_backlog_events', { edge: s.edge.url }), {
        timeout: 5_000,
        interval: 50,
      })
      .toBe(0)
    sub.close()
    all.close()
  })

  it('counts a re-established LISTEN as a reconnect', async () => {
    const before = metricValue(await scrape(`http://127.0.0.1:${relayServer.port}/metrics`), 'edge_relay_listener_reconnects_total')
    await s.db.sql`select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and application_name = 'edge-relay-listen'`
    const deadline = Date.now() + 30_000
    for (;;) {
      const after = metricValue(await scrape(`http://127.0.0.1:${relayServer.port}/metrics`), 'edge_relay_listener_reconnects_total')
      if (after > before) break
      if (Date.now() > deadline) throw new Error('listener reconnect was not counted within 30 s')
      await new Promise((r) => setTimeout(r, 200))
    }
  })
})
