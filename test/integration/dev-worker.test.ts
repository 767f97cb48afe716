import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'

const root = resolve(import.meta.dirname, '../..')

/** `npm run dev:worker` as a developer runs it: wrangler dev + relay, a printed token, Ctrl-C stops all. */
describe('npm run dev:worker', () => {
  let db: TestDb
  beforeAll(async () => {
    db = await freshDatabase()
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('prints a working stream URL and token, delivers a commit, and stops on SIGINT', async () => {
    const [port, relayPort] = [await freePort(), await freePort()]
    const state = mkdtempSync(join(tmpdir(), 'edge-relay-dev-worker-'))
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dev-worker.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(port), RELAY_PORT: String(relayPort), WRANGLER_PERSIST_TO: state },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    try {
      const deadline = Date.now() + 90_000
      while (!/curl -N '([^']+)'/.test(output)) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`dev:worker did not come up:\n${output}`)
        await new Promise((r) => setTimeout(r, 100))
      }
      const url = /curl -N '([^']+)'/.exec(output)![1]!
      expect(url.startsWith(`http://127.0.0.1:${port}/v1/tenants/demo/events?access_token=`)).toBe(true)
      const stream = await openStream(url)
      expect(stream.status).toBe(200)
      const [row] = await db.sql<{ seq: string }[]>`select relay.publish('demo', 'greetings', '{"hello": "world"}') as seq`
      await stream.waitFor((m) => m.some((e) => e.id === row!.seq), 30_000)
      stream.close()
    } finally {
      child.kill('SIGINT')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))])
      rmSync(state, { recursive: true, force: true })
    }
    expect(await exited, output.slice(-2000)).toBe(0)
    expect(output).toContain('stopping')
  }, 120_000)
})
