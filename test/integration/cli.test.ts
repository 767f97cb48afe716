import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { startStack, type Stack } from '../support/stack.ts'
import { mintToken } from '../support/tokens.ts'

const BIN = resolve(import.meta.dirname, '../../bin/edge-relay.mjs')

let s: Stack
beforeAll(async () => {
  s = await startStack()
})
afterAll(() => s?.stop())

/** Runs the real bin (tsx loader and all) and collects its output lines. */
const run = (args: string[]) => {
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  })
  const out: string[] = []
  const err: string[] = []
  const lines = (into: string[]) => {
    let partial = ''
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop()!
      into.push(...parts)
    }
  }
  child.stdout!.on('data', lines(out))
  child.stderr!.on('data', lines(err))
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>
  const until = async (what: string, pred: () => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; stdout ${JSON.stringify(out)} stderr ${JSON.stringify(err)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return { child, out, err, exit, until }
}

describe('edge-relay tail', () => {
  it('prints the events of a real publish as JSON lines, and exits 0 on Ctrl-C', async () => {
    const token = await mintToken({ tenant: 'cli' })
    const p = run(['tail', 'cli', '--url', s.edge.url, '--token', token, '--json'])
    await p.until('the stream to open', () => p.err.some((l) => l.startsWith('following cli')))
    await s.publish('cli', 'orders', { id: 1 })
    await s.publish('cli', 'users', { name: 'Ada' })
    await p.until('two events', () => p.out.length === 2)
    expect(p.out.map((l) => JSON.parse(l))).toEqual([
      { seq: 1, topic: 'orders', data: { id: 1 } },
      { seq: 2, topic: 'users', data: { name: 'Ada' } },
    ])
    p.child.kill('SIGINT')
    const [code] = await p.exit
    expect(code).toBe(0)
  })

  it('--topics and --from: replays what the edge holds after a seq, then follows, in the human format', async () => {
    for (let i = 1; i <= 4; i++) await s.publish('cli2', i % 2 ? 'odd' : 'even', { i })
    const token = await mintToken({ tenant: 'cli2' })
    const p = run(['tail', 'cli2', '--url', s.edge.url, '--token', token, '--topics', 'odd', '--from', '1'])
    await p.until('the replay', () => p.out.length === 1)
    await s.publish('cli2', 'odd', { i: 5 })
    await p.until('the live event', () => p.out.length === 2)
    expect(p.out[0]).toMatch(/^#3 {2}\d\d:\d\d:\d\d\.\d{3} {2}odd {2}\{"i": ?3\}$/)
    expect(p.out[1]).toMatch(/^#5 {2}.* {2}odd {2}\{"i": ?5\}$/)
    p.child.kill('SIGINT')
    expect((await p.exit)[0]).toBe(0)
  })

  it('a refused token exits 1 with the edge’s reason', async () => {
    const token = await mintToken({ tenant: 'someone-else' })
    const p = run(['tail', 'cli', '--url', s.edge.url, '--token', token])
    const [code] = await p.exit
    expect(code).toBe(1)
    expect(p.err.join('\n')).toMatch(/403.*TENANT_FORBIDDEN/)
  })

  it('a token the edge cannot verify (401) stops at once, naming the URL and saying retrying cannot fix it', async () => {
    const token = await mintToken({ tenant: 'cli' }, { secret: 'not-the-edge-secret-at-all-0123456789' })
    const p = run(['tail', 'cli', '--url', s.edge.url, '--token', token])
    const [code] = await p.exit
    expect(code).toBe(1)
    expect(p.err).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${s.edge.url}/v1/tenants/cli/events: edge refused the stream \\(401\\) TOKEN_INVALID: .*; the token is the problem and will not fix itself: pass a valid one for this tenant with --token$`,
        ),
      ),
    ])
  })

  it('an edge it cannot reach: each retry line names the URL and the reason, said once while it lasts', async () => {
    const port = await freePort() // nothing listens there
    const token = await mintToken({ tenant: 'cli' })
    const p = run(['tail', 'cli', '--url', `http://127.0.0.1:${port}`, '--token', token])
    await p.until('the first retry line', () => p.err.length > 0)
    // ~250 ms doubling: several attempts within 3 s, one line.
    await new Promise((r) => setTimeout(r, 3_000))
    expect(p.err).toEqual([
      expect.stringMatching(
        new RegExp(
          `^http://127\\.0\\.0\\.1:${port}/v1/tenants/cli/events: cannot reach the edge \\(ECONNREFUSED\\); retrying in \\d+\\.\\d s$`,
        ),
      ),
    ])
    p.child.kill('SIGINT')
    expect((await p.exit)[0]).toBe(0)
  })
})
