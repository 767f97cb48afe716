import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { serveChild } from '../lib/child.ts'

/**
 * CPU profiles (and heap sizes: `heap`) of the Worker's isolate in workerd (`--cpu-prof` with the workers workloads), over the Chrome DevTools
 * Protocol of its inspector. Started with --experimental-websocket (Node 20's WebSocket). Besides the .cpuprofile
 * file, each profile is summed up by where its samples ran: the Worker and its room share one isolate and one thread,
 * so the process's CPU time cannot tell them apart, but a sample's stack can.
 */
type CallFrame = { functionName: string; scriptId: string; url: string; lineNumber: number }
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] }
type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

let ws: WebSocket | undefined
let nextId = 0
const pending = new Map<number, (result: Record<string, unknown>) => void>()
/** scriptId → url (wrangler's proxy rewrites these urls to files; the profile keeps the runtime's: ids match both). */
const scripts = new Map<string, string>()

const send = (method: string, params: Record<string, unknown> = {}) =>
  new Promise<Record<string, any>>((resolve, reject) => {
    const id = ++nextId
    pending.set(id, resolve)
    ws!.send(JSON.stringify({ id, method, params }))
    setTimeout(() => pending.has(id) && (pending.delete(id), reject(new Error(`${method}: no answer`))), 30_000).unref()
  })

/**
 * The room's side: the Durable Object class and what it runs. Everything else of the bundle is the Worker's side
 * (routing, auth, the socket → SSE conversion). Shared helpers (framing, topic filters) count for whoever called them.
 */
const ROOM_FILES =
  /edge\/room\/(durable\/room-object|durable\/sqlite-history|durable\/socket-sink|durable\/shards|room|history|presence|queue)\.ts$/

/** Line → source file of the bundle (esbuild marks each module with a `// path` comment), and the TenantRoom class's lines. */
const sourceMap = async () => {
  const ranges: { script: string; from: number; file: string }[] = [] // script: its id
  const roomClass: { script: string; from: number; to: number }[] = []
  for (const [id, url] of scripts) {
    if (!url || url.startsWith('node:') || url.startsWith('cloudflare')) continue
    const { scriptSource } = (await send('Debugger.getScriptSource', { scriptId: id })) as { scriptSource: string }
    const lines = scriptSource.split('\n')
    lines.forEach((line, i) => {
      const m = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(line)
      if (m) ranges.push({ script: id, from: i, file: m[1]! })
      if (/^var TenantRoom = class/.test(line)) roomClass.push({ script: id, from: i, to: lines.indexOf('};', i) })
    })
  }
  ranges.sort((a, b) => b.from - a.from)
  const fileOf = (f: CallFrame) => ranges.find((r) => r.script === f.scriptId && r.from <= f.lineNumber)?.file
  const inRoomClass = (f: CallFrame) => roomClass.some((r) => r.script === f.scriptId && r.from <= f.lineNumber && f.lineNumber <= r.to)
  return { fileOf, inRoomClass }
}

const summarise = async (profile: Profile) => {
  const { fileOf, inRoomClass } = await sourceMap()
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const side = new Map<number, string>()
  const sideOf = (id: number): string => {
    const known = side.get(id)
    if (known) return known
    const leaf = byId.get(id)!.callFrame.functionName
    let s = leaf === '(garbage collector)' ? 'gc' : leaf === '(idle)' ? 'idle' : leaf === '(program)' ? 'native' : 'other'
    if (s === 'other')
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const f = byId.get(n)!.callFrame
        const file = fileOf(f)
        if ((file && ROOM_FILES.test(file)) || inRoomClass(f)) {
          s = 'room'
          break
        }
        if (file) s = 'worker'
      }
    side.set(id, s)
    return s
  }
  const ms: Record<string, number> = { worker: 0, room: 0, gc: 0, native: 0, other: 0, idle: 0 }
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    ms[sideOf(id)]! += dt
    self.set(id, (self.get(id) ?? 0) + dt)
  })
  const top = [...self.entries()]
    .map(([id, t]) => ({ f: byId.get(id)!.callFrame, t }))
    .filter(({ f }) => f.functionName !== '(idle)')
    .sort((a, b) => b.t - a.t)
    .slice(0, 25)
    .map(({ f, t }) => `${t.toFixed(1)} ms ${f.functionName || '(anonymous)'} ${fileOf(f) ?? f.url}:${f.lineNumber}`)
  return { ms: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)])), top }
}

const open = async (url: string) => {
  // wrangler's inspector proxy refuses a WebSocket without an Origin (Node's WebSocket takes headers as undici's does).
  ws = new (WebSocket as unknown as new (url: string, init: object) => WebSocket)(url, { headers: { origin: 'http://localhost' } })
  ws.addEventListener('message', (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown>; method?: string; params?: any }
    if (msg.id !== undefined && pending.has(msg.id)) pending.get(msg.id)!(msg.result ?? {}), pending.delete(msg.id)
    else if (msg.method === 'Debugger.scriptParsed') scripts.set(msg.params.scriptId, msg.params.url)
  })
  await new Promise((resolve, reject) => (ws!.addEventListener('open', resolve), ws!.addEventListener('error', reject)))
}

serveChild({
  /** The isolate's JavaScript heap after a full garbage collection (bytes): what counts against its memory limit. */
  async heap(m) {
    if (!ws) await open(m.url as string)
    // workerd runs the collection when the isolate next has work: a request to `poke` gives it some.
    let done = false
    const gc = send('HeapProfiler.collectGarbage').finally(() => (done = true))
    for (let i = 0; i < 50 && !done; i++) {
      await fetch(m.poke as string).then(
        (r) => r.body?.cancel(),
        () => {},
      )
      await Promise.race([gc, new Promise((r) => setTimeout(r, 100))])
    }
    await gc
    const { usedSize } = (await send('Runtime.getHeapUsage')) as { usedSize: number }
    return { usedSize }
  },
  async start(m) {
    await open(m.url as string)
    await send('Debugger.enable')
    await send('Profiler.enable')
    await send('Profiler.setSamplingInterval', { interval: 200 })
    await send('Profiler.start')
    return {}
  },
  async stop(m) {
    const { profile } = (await send('Profiler.stop')) as { profile: Profile }
    mkdirSync(dirname(m.file as string), { recursive: true })
    writeFileSync(m.file as string, JSON.stringify(profile))
    const summary = await summarise(profile)
    await send('Debugger.disable')
    ws!.close()
    return summary
  },
}).ready({})
