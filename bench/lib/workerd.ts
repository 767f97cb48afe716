import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Miniflare } from 'miniflare'
import { freePort } from '../../scripts/free-port.ts'
import { startWranglerDev } from '../../scripts/wrangler-dev.ts'
import { bundleWorker } from '../../scripts/worker-bundle.ts'
import { JWT_SECRET, RELAY_SECRET } from './context.ts'

/**
 * The Worker edge in real workerd, as `npm run dev:worker` runs it (`wrangler dev`, scripts/wrangler-dev.ts), with
 * what the bench reads of it. wrangler dev runs two workerd processes: a front proxy on the port it was given, and
 * the Worker's own (Miniflare's entry socket on a port the kernel picks). The proxy costs ~25 µs of CPU per event
 * and ~18 ms at p50, and splits SSE frames across HTTP chunks; production has nothing like it, so the bench talks to
 * the Worker's own port (`url`) and keeps the proxy's (`proxyUrl`) for the figure that shows that cost.
 * Linux only: the Worker's process and port are found in /proc.
 */
export interface BenchWorker {
  /** The Worker's own port (Miniflare's entry worker, in the same process, hands each request to ours). */
  url: string
  /** wrangler dev's port, through its front proxy. */
  proxyUrl: string
  /** The workerd that runs the Worker and its Durable Objects (one isolate, one thread: they are not told apart). */
  pid: number
  proxyPid: number
  /** Chrome DevTools Protocol of the Worker's isolate, through wrangler's inspector proxy (children/workerd-prof.ts). */
  inspectorUrl: string
  stop(): Promise<void>
}

/**
 * Starts the Worker with the bench's secrets, `vars` besides, and room storage in a fresh directory. `profile`: not
 * minified, so that a CPU profile names functions and lines of the bundle map to its source files.
 */
export const startBenchWorker = async (vars: Record<string, string> = {}, { profile = false } = {}): Promise<BenchWorker> => {
  const persistTo = mkdtempSync(join(tmpdir(), 'edge-relay-bench-workerd-'))
  const dev = await startWranglerDev({
    port: 0,
    persistTo,
    // Logs at warn: a line per request would be its own cost (workerd hands each to wrangler's process).
    vars: { EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET, LOG_LEVEL: 'warn', ...vars },
    args: profile ? ['--minify=false'] : [],
    onOutput: (line) => /error/i.test(line) && !/Request\.cf|ENOTFOUND|getaddrinfo/.test(line) && console.error(`[wrangler] ${line}`),
  })
  const stop = async () => {
    await dev.stop()
    rmSync(persistTo, { recursive: true, force: true })
  }
  try {
    const found = await findWorkerd(dev.process.pid!, dev.port)
    return { ...found, proxyUrl: dev.url, inspectorUrl: `ws://127.0.0.1:${dev.inspectorPort}/ws`, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * The floor Worker (bench/workerd/floor-worker.ts; `stream`: its rooms serve SSE themselves) in real workerd, run by
 * Miniflare on a direct socket (no entry worker, no proxy): the same workerd as wrangler dev's, one isolate and one
 * thread for the Worker and its objects. `inspectorUrl`: its isolate's, for the heap figures.
 */
export const startFloorWorker = async (
  transport: 'socket' | 'stream',
): Promise<Pick<BenchWorker, 'url' | 'pid' | 'inspectorUrl' | 'stop'>> => {
  const bundle = await bundleWorker(new URL('../workerd/floor-worker.ts', import.meta.url).pathname, { minify: true })
  const before = new Set(children(process.pid))
  const inspectorPort = await freePort()
  const mf = new Miniflare({
    name: 'floor',
    inspectorPort,
    modules: [{ type: 'ESModule', path: 'worker.js', contents: bundle }],
    compatibilityDate: '2026-04-01',
    durableObjects: { ROOMS: { className: 'FloorRoom', useSQLite: true } },
    bindings: { TRANSPORT: transport },
    host: '127.0.0.1',
    port: 0,
    unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
  })
  try {
    const url = (await mf.unsafeGetDirectURL()).origin
    const pid = children(process.pid).find((p) => !before.has(p) && comm(p) === 'workerd')
    if (!pid) throw new Error("the floor Worker's workerd process was not found")
    return { url, pid, inspectorUrl: `ws://127.0.0.1:${inspectorPort}/core:user:floor`, stop: () => mf.dispose() }
  } catch (err) {
    await mf.dispose()
    throw err
  }
}

/** Of the workerd processes under wrangler, the one listening on `proxyPort` is the proxy; the Worker's answers /healthz elsewhere. */
const findWorkerd = async (root: number, proxyPort: number) => {
  const procs = descendants(root).filter((pid) => comm(pid) === 'workerd')
  const proxyPid = procs.find((pid) => listening(pid).includes(proxyPort))
  for (const pid of procs) {
    if (pid === proxyPid) continue
    for (const port of listening(pid)) {
      const url = `http://127.0.0.1:${port}`
      const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.ok,
        () => false,
      )
      if (ok && proxyPid) return { url, pid, proxyPid }
    }
  }
  throw new Error(`the Worker's own workerd port was not found (workerd processes under wrangler: ${procs.join(', ') || 'none'})`)
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

const comm = (pid: number) => read(`/proc/${pid}/comm`).trim()

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces): [0] is state, [1] ppid, [11] utime, [12] stime. */
const statFields = (pid: number) => {
  const s = read(`/proc/${pid}/stat`)
  return s.slice(s.lastIndexOf(')') + 2).split(' ')
}

const children = (root: number): number[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(statFields(Number(d))[1]) === root)
    .map(Number)

const descendants = (root: number): number[] => {
  const parent = new Map<number, number>()
  for (const d of readdirSync('/proc')) if (/^\d+$/.test(d)) parent.set(Number(d), Number(statFields(Number(d))[1]))
  const out: number[] = []
  const walk = (p: number) => {
    for (const [pid, pp] of parent) if (pp === p) out.push(pid), walk(pid)
  }
  walk(root)
  return out
}

/** TCP ports a process listens on: its socket inodes matched against the LISTEN rows of /proc/net/tcp. */
const listening = (pid: number): number[] => {
  const inodes = new Set<string>()
  let fds: string[] = []
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return []
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = []
  for (const line of read(`/proc/${pid}/net/tcp`).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16))
  }
  return ports
}

/** CPU time (user + system, ms) a process has used so far, all its threads (clock ticks of 10 ms). */
export const procCpuMs = (pid: number) => {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) * 10
}

/** Resident memory of a process, bytes. */
export const procRss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`))?.[1] ?? NaN) * 1024
