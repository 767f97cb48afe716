import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postBatch } from '../../relay/edge-client.ts'
import { openStream } from '../support/sse-client.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from '../support/tokens.ts'

const root = resolve(import.meta.dirname, '../..')
const deno = resolve(root, 'node_modules/.bin/deno')
const denoEnv = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }

/** `npx deno task edge` (the npm `deno` binary) serving the same app with Deno.serve and in-memory rooms. */
describe('the Deno edge', () => {
  let child: ChildProcess
  let url: string
  let exited: Promise<number | null>

  beforeAll(async () => {
    child = spawn(deno, ['task', 'edge'], {
      cwd: root,
      env: { ...denoEnv, PORT: '0', HOST: '127.0.0.1', EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // `deno task` runs deno as a child: signal the group we created
    })
    exited = new Promise((done) => child.once('exit', (code) => done(code)))
    let output = ''
    url = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`deno task edge did not report its URL:\n${output}`)), 60_000)
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)
        if (m) clearTimeout(timer), done(m[1]!)
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) => fail(new Error(`deno task edge exited with ${code}:\n${output}`)))
    })
  }, 90_000)

  afterAll(async () => {
    if (child?.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  })

  it('streams a published event to a client and stops cleanly on SIGTERM', async () => {
    const token = await mintToken({ tenant: 'deno' })
    const stream = await openStream(`${url}/v1/tenants/deno/events?access_token=${token}`)
    expect(stream.status).toBe(200)
    const reply = await postBatch(url, RELAY_SECRET, {
      tenant: 'deno',
      events: [{ seq: 1, topic: 'hello', data: JSON.stringify({ from: 'deno' }), ts: Date.now() }],
    })
    expect(reply).toEqual({ tenant: 'deno', head: 1 })
    await stream.waitFor((m) => m.length > 0)
    expect(stream.messages).toEqual([{ id: '1', event: 'hello', data: '{"from":"deno"}' }])

    process.kill(-child.pid!, 'SIGTERM')
    await stream.ended // the edge ends open streams when it stops
    expect(await exited).toBe(0)
  })

  it('typechecks under deno check', async () => {
    await promisify(execFile)(deno, ['check', 'edge/platform/deno.ts'], { cwd: root, env: denoEnv })
  }, 120_000)
})
