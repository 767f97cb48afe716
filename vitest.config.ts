import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'
import { FIXTURE_PUBLIC_JWK } from './test/support/fixture-key.ts'
import { JWT_SECRET, RELAY_SECRET } from './test/support/tokens.ts'

/**
 * postgres.js 3.4.9 can throw from a setImmediate when a connection dies with a small write pending (a known
 * upstream bug; no release fixes it yet). The chaos suite restarts Postgres under load on purpose,
 * so its own client pool may hit it; that error alone is not a failure of what we test. Everything else still is.
 */
const isPostgresJsNullSocketBug = (e: { message?: string; stack?: string }) =>
  e.message === "Cannot read properties of null (reading 'write')" && /postgres[\\/]src[\\/]connection\.js/.test(e.stack ?? '')

/** What the Workers projects bind besides wrangler.toml's vars. */
const workersBindings = {
  EDGE_JWT_SECRET: JWT_SECRET,
  RELAY_SECRET,
  HISTORY_LIMIT: '5',
  HISTORY_MAX_BYTES: '65536',
  // The auth table (test/workers/auth-table.test.ts): RS256 against an inline key, and low limits.
  EDGE_JWT_PUBLIC_KEY: JSON.stringify(FIXTURE_PUBLIC_JWK),
  EDGE_MAX_CONNECTIONS_PER_TENANT: '4',
  EDGE_MAX_CONNECTIONS_PER_SUBJECT: '2',
}

export default defineConfig({
  test: {
    onUnhandledError: (error) => !isPostgresJsNullSocketBug(error),
    projects: [
      {
        test: {
          name: 'unit',
          include: ['shared/**/*.test.ts', 'edge/**/*.test.ts', 'relay/**/*.test.ts', 'test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/postgres-global.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // Real Chromium (Debian `chromium` + playwright-core) against a real stack; screenshots in test-results/.
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/postgres-global.ts', 'test/support/pack-global.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Durable Object rooms in real workerd, built from wrangler.toml (edge/platform/workers.ts).
        plugins: [cloudflareTest({ wrangler: { configPath: './wrangler.toml' }, miniflare: { bindings: workersBindings } })],
        test: {
          name: 'workers',
          include: ['test/workers/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The same, with rooms that shard past 3 subscribers: the Rooms contract and the shards' own tests (test/workers/sharded).
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: { bindings: { ...workersBindings, ROOM_SHARD_SUBSCRIBERS: '3' } },
          }),
        ],
        test: {
          name: 'workers-sharded',
          include: ['test/workers/sharded/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // Faults one after another against our own PostgreSQL, relays as child processes and a Node edge.
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
