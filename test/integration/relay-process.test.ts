import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/embedded.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { edgeEnv } from '../support/stack.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { RELAY_SECRET } from '../support/tokens.ts'

const root = resolve(import.meta.dirname, '../..')

/** `npm run relay` as a real child process (tsx), with env; resolves with its exit code and output. */
const runRelay = (env: Record<string, string>) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)))
  return { child, exited, output: () => output }
}

let db: TestDb
let edge: NodeEdge
beforeAll(async () => {
  db = await freshDatabase()
  edge = await startNodeEdge(edgeEnv())
})
afterAll(async () => {
  await edge?.close()
  await db?.drop()
})

describe('npm run relay', () => {
  it('refuses bad configuration with a message naming each bad variable, exit 1', async () => {
    const r = runRelay({ DATABASE_URL: 'mysql://nope', EDGE_URL: 'ftp://x', RELAY_SECRET: 'short', RELAY_PORT: 'abc' })
    expect(await r.exited).toBe(1)
    for (const name of ['DATABASE_URL', 'EDGE_URL', 'RELAY_SECRET', 'RELAY_PORT']) expect(r.output()).toContain(name)
  })

  it('serves /healthz, delivers, and exits 0 on SIGTERM after closing its connections', async () => {
    const port = await freePort()
    const r = runRelay({ DATABASE_URL: db.url, EDGE_URL: edge.url, RELAY_SECRET, RELAY_PORT: String(port) })
    let health: Response | undefined
    for (let i = 0; i < 200 && !health?.ok; i++) {
      health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
      if (!health?.ok) await new Promise((res) => setTimeout(res, 50))
    }
    expect(health?.status).toBe(200)
    expect(await health!.json()).toMatchObject({ ok: true, listening: true })
    const [row] = await db.sql<{ seq: string }[]>`select relay.publish('proc', 't', '{"x":1}') as seq`
    for (let i = 0; i < 200 && edge.rooms.room('proc').head < Number(row!.seq); i++) await new Promise((res) => setTimeout(res, 25))
    expect(edge.rooms.room('proc').head).toBe(1)
    r.child.kill('SIGTERM')
    expect(await r.exited).toBe(0)
    expect(r.output()).toContain('relay stopped')
    // The server notices closed sockets a moment after the client exits.
    let left = -1
    for (let i = 0; i < 100 && left !== 0; i++) {
      const [row] = await db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'edge-relay%'`
      left = row!.n
      if (left) await new Promise((res) => setTimeout(res, 50))
    }
    expect(left).toBe(0)
  })
})
