import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { startNodeEdge, type NodeEdge } from '../../edge/platform/node.ts'
import { freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'
import { edgeEnv } from '../support/stack.ts'
import { mintToken, RELAY_SECRET } from '../support/tokens.ts'

/**
 * A crash is a restart, not a hang: an uncaught exception or unhandled rejection in a relay process logs one JSON
 * error line and exits 70 at once, so that Postgres frees its leader lock, a standby takes over and systemd restarts
 * it. The crash is injected from outside (test/support/crash-after.mjs via NODE_OPTIONS), as a library's timer
 * would throw.
 */
const root = resolve(import.meta.dirname, '../..')
const crashAfter = resolve(import.meta.dirname, '../support/crash-after.mjs')
// The message postgres.js throws from a timer when a connection dies during a Postgres restart.
const CRASH_MESSAGE = "Cannot read properties of null (reading 'write')"

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const until = async (what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 20_000) => {
  const end = Date.now() + timeoutMs
  while (!(await Promise.resolve(pred()).catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

interface RelayChild {
  pid: number
  startedAt: number
  /** Exit code and signal, once it has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number }
  stderr(): string
  role(): Promise<string | undefined>
}

const children: RelayChild[] = []

/** `npm run relay` as a child process (tsx), its stderr kept apart, stopped by PID. */
const spawnRelay = async (env: Record<string, string>): Promise<RelayChild> => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', RELAY_SECRET, RELAY_HOST: '127.0.0.1', RELAY_PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const r: RelayChild = {
    pid: child.pid!,
    startedAt: Date.now(),
    exited: new Promise((done) =>
      // 'close', not 'exit': stderr has been read to its end by then.
      child.once('close', (code, signal) => done((r.exit = { code, signal, at: Date.now() }))),
    ),
    stderr: () => stderr,
    role: async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })
      return ((await res.json()) as { role?: string }).role
    },
  }
  children.push(r)
  return r
}

/** SIGTERM by PID, SIGKILL after 5 s. */
const stop = async (r: RelayChild) => {
  if (r.exit) return
  process.kill(r.pid, 'SIGTERM')
  const timer = setTimeout(() => !r.exit && process.kill(r.pid, 'SIGKILL'), 5_000)
  await r.exited
  clearTimeout(timer)
}

/** The JSON log lines of a relay's stderr; anything else on stderr (a Node stack dump) fails the parse. */
const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as { level: string; msg: string } & Record<string, unknown>
      } catch {
        throw new Error(`relay stderr has a line that is not a JSON log line: ${l}`)
      }
    })

let db: TestDb
let edge: NodeEdge
beforeAll(async () => {
  db = await freshDatabase()
  edge = await startNodeEdge(edgeEnv())
})
afterEach(async () => {
  await Promise.all(children.splice(0).map(stop))
})
afterAll(async () => {
  await edge?.close()
  await db?.drop()
})

describe('relay process crash', () => {
  it('the leader crashes: one error line, exit 70, the standby takes over, every seq arrives once and in order', async () => {
    const tenant = 'crash'
    const base = { DATABASE_URL: db.url, EDGE_URL: edge.url, RELAY_SWEEP_MS: '500' }
    // Long enough for both relays to start (tsx) and for events to flow through the leader first.
    const crashAfterMs = 8_000
    const leader = await spawnRelay({
      ...base,
      NODE_OPTIONS: `--import=${crashAfter}`,
      CRASH_AFTER_MS: String(crashAfterMs),
      CRASH_MESSAGE,
    })
    await until('the first relay to lead', async () => (await leader.role()) === 'leader')
    const standby = await spawnRelay(base)
    await until('the second relay to wait as a standby', async () => (await standby.role()) === 'standby')
    expect(leader.exit, 'the leader crashed before the standby was up: raise crashAfterMs').toBeUndefined()

    const token = await mintToken({ tenant })
    const stream = await openStream(`${edge.url}/v1/tenants/${tenant}/events`, { authorization: `Bearer ${token}` })
    expect(stream.status).toBe(200)

    // Publish steadily from before the crash until after the takeover, labelling each seq with its phase.
    type Phase = 'before' | 'during' | 'after'
    let phase: Phase = 'before'
    const published: { seq: number; phase: Phase }[] = []
    const publish = async () => {
      const p = phase
      const [row] = await db.sql<{ seq: string }[]>`select relay.publish(${tenant}, 't', ${db.sql.json({ phase: p })}) as seq`
      published.push({ seq: Number(row!.seq), phase: p })
    }
    // A burst the moment the crash is seen, before the standby can have taken over.
    const duringBurst = leader.exited.then(async () => {
      phase = 'during'
      for (let i = 0; i < 5; i++) await publish()
    })
    let publishing = true
    const publisher = (async () => {
      while (publishing) {
        await publish()
        await sleep(20)
      }
    })()

    // Before: the leader delivers while it is alive.
    await until('events delivered by the first leader', () => stream.seqs().length >= 10)
    expect(leader.exit, 'the leader crashed before it delivered: raise crashAfterMs').toBeUndefined()

    const exit = await leader.exited
    await duringBurst
    await until('the standby to lead', async () => (await standby.role()) === 'leader', 10_000)
    phase = 'after'
    await until('events published after the takeover', () => published.filter((p) => p.phase === 'after').length >= 10)
    publishing = false
    await publisher

    // The leader exited non-zero, promptly (crash-after.mjs starts its timer as the process starts).
    expect(exit).toMatchObject({ code: 70, signal: null })
    expect(exit.at - leader.startedAt).toBeLessThan(crashAfterMs + 5_000)
    // Exactly one error line on its stderr, naming the crash, where it was thrown, and that the process exits.
    const lines = logLines(leader.stderr())
    const errors = lines.filter((l) => l.level === 'error')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ err: CRASH_MESSAGE, at: expect.stringContaining('crash-after.mjs') })
    expect(errors[0]!.msg).toMatch(
      /crashed \(uncaught exception\); exiting with code 70 so that systemd restarts it and a standby takes over/,
    )
    expect(lines.at(-1)).toBe(errors[0]) // nothing after it: no graceful shutdown was attempted

    // Every seq published before, during and after the crash reached the subscriber, once, in order.
    for (const p of ['before', 'during', 'after'] as const) expect(published.filter((x) => x.phase === p).length).toBeGreaterThan(0)
    const last = Math.max(...published.map((p) => p.seq))
    expect(published).toHaveLength(last)
    await stream.waitFor(() => stream.seqs().length >= last, 15_000).catch(() => {})
    stream.close()
    expect(stream.seqs()).toEqual(Array.from({ length: last }, (_, i) => i + 1))
    expect(stream.messages.filter((m) => m.event === 'reset')).toEqual([])
    // The standby is now the leader and healthy; it exits cleanly when asked.
    await stop(standby)
    expect(standby.exit).toMatchObject({ code: 0 })
  }, 90_000)

  it('an unhandled rejection ends the relay the same way', async () => {
    const r = await spawnRelay({
      DATABASE_URL: db.url,
      EDGE_URL: edge.url,
      NODE_OPTIONS: `--import=${crashAfter}`,
      CRASH_AFTER_MS: '3000', // after start-up: main.ts has installed its handlers by then
      CRASH_KIND: 'rejection',
      CRASH_MESSAGE: 'injected rejection',
    })
    const exit = await r.exited
    expect(exit).toMatchObject({ code: 70, signal: null })
    const errors = logLines(r.stderr()).filter((l) => l.level === 'error')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ err: 'injected rejection', at: expect.stringContaining('crash-after.mjs') })
    expect(errors[0]!.msg).toMatch(/crashed \(unhandled rejection\); exiting with code 70/)
  })
})
