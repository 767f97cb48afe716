import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postBatch, postHello } from '../../relay/edge-client.ts'
import { openStream } from '../support/sse-client.ts'
import { JWT_SECRET, mintToken, RELAY_SECRET } from '../support/tokens.ts'

const root = resolve(import.meta.dirname, '../..')
const deno = resolve(root, 'node_modules/.bin/deno')
const denoEnv = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }

/** `npx deno task edge` (the npm `deno` binary) with `env` added; resolves once it reports its URL. */
const startDenoEdge = async (env: Record<string, string> = {}) => {
  const child = spawn(deno, ['task', 'edge'], {
    cwd: root,
    env: { ...denoEnv, PORT: '0', HOST: '127.0.0.1', EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // `deno task` runs deno as a child: signal the group we created
  })
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  let output = ''
  const url = await new Promise<string>((done, fail) => {
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
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return {
    url,
    exited,
    /** What it wrote to stdout and stderr (for failure messages). */
    output: () => output,
    /** Signals the process group (`deno task` and its deno). */
    signal: (signal: NodeJS.Signals) => process.kill(-child.pid!, signal),
    kill() {
      if (child.exitCode !== null) return
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    },
  }
}

const hello = (tenant: string, seq: number) => ({ seq, topic: 'hello', data: JSON.stringify({ from: tenant }), ts: Date.now() })

/** `deno task edge` serving the same app with Deno.serve and in-memory rooms. */
describe('the Deno edge', () => {
  let edge: Awaited<ReturnType<typeof startDenoEdge>>

  beforeAll(async () => {
    edge = await startDenoEdge()
  }, 90_000)

  afterAll(() => edge?.kill())

  it('streams a published event to a client and stops cleanly on SIGTERM', async () => {
    const token = await mintToken({ tenant: 'deno' })
    const stream = await openStream(`${edge.url}/v1/tenants/deno/events?access_token=${token}`)
    expect(stream.status).toBe(200)
    const reply = await postBatch(edge.url, RELAY_SECRET, { tenant: 'deno', events: [hello('deno', 1)] })
    expect(reply).toEqual({ tenant: 'deno', head: 1 })
    await stream.waitFor((m) => m.length > 0)
    expect(stream.messages).toEqual([{ id: '1', event: 'hello', data: '{"from":"deno"}' }])

    edge.signal('SIGTERM')
    await stream.ended // the edge ends open streams when it stops
    expect(await edge.exited).toBe(0)
  })

  it('typechecks under deno check', async () => {
    await promisify(execFile)(deno, ['check', 'edge/platform/deno.ts'], { cwd: root, env: denoEnv })
  }, 120_000)
})

/** The same task with EDGE_ROOMS=kv: rooms in a Deno KV file under .data/, which outlive the process. */
describe('the Deno edge with KV rooms', () => {
  const dir = `.data/test-kv-${randomUUID()}`
  const env = { EDGE_ROOMS: 'kv', EDGE_KV_PATH: `${dir}/kv.sqlite3` }
  const started: Awaited<ReturnType<typeof startDenoEdge>>[] = []
  const start = async () => {
    const edge = await startDenoEdge(env)
    started.push(edge)
    return edge
  }

  afterAll(() => {
    for (const edge of started) edge.kill()
    rmSync(resolve(root, dir), { recursive: true, force: true })
  })

  it('streams a published event, and after a restart answers the same instance and replays it', async () => {
    const first = await start()
    const token = await mintToken({ tenant: 'deno-kv' })
    const stream = await openStream(`${first.url}/v1/tenants/deno-kv/events?access_token=${token}`)
    expect(stream.status).toBe(200)
    expect(await postBatch(first.url, RELAY_SECRET, { tenant: 'deno-kv', events: [hello('kv', 1)] })).toEqual({
      tenant: 'deno-kv',
      head: 1,
    })
    await stream.waitFor((m) => m.length > 0)
    expect(stream.messages).toEqual([{ id: '1', event: 'hello', data: '{"from":"kv"}' }])
    const { instance } = await postHello(first.url, RELAY_SECRET)
    expect(instance).toMatch(/^kv-/)
    first.signal('SIGTERM')
    await stream.ended
    expect(await first.exited, first.output()).toBe(0)

    const second = await start()
    expect(await postHello(second.url, RELAY_SECRET)).toEqual({ instance })
    expect(await postBatch(second.url, RELAY_SECRET, { tenant: 'deno-kv', events: [] })).toEqual({ tenant: 'deno-kv', head: 1 })
    const resumed = await openStream(`${second.url}/v1/tenants/deno-kv/events?access_token=${token}`, { 'last-event-id': '0' })
    await resumed.waitFor((m) => m.length > 0)
    expect(resumed.seqs()).toEqual([1])
    resumed.close()
    second.signal('SIGTERM')
    expect(await second.exited, second.output()).toBe(0)
  })
})
