/**
 * Runs the Worker edge under `wrangler dev` (local workerd, no Cloudflare login) on 127.0.0.1, for
 * `npm run dev:worker` and the end-to-end test. Stops it by its process group, never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { freePort } from './free-port.ts'

export interface WranglerDevOptions {
  /** 0 = a free port. */
  port: number
  /** Vars and secrets for the Worker (`--var NAME:value`), e.g. EDGE_JWT_SECRET and RELAY_SECRET. */
  vars: Record<string, string>
  /** Where Durable Object storage lives (default .wrangler/state). */
  persistTo?: string
  /** wrangler's own output, line by line. */
  onOutput?: (line: string) => void
  readyTimeoutMs?: number
  /** More `wrangler dev` flags (the bench's profiles: `--minify=false`). */
  args?: string[]
}

export interface WranglerDev {
  url: string
  port: number
  /** wrangler's inspector proxy: Chrome DevTools for the Worker's isolate. */
  inspectorPort: number
  process: ChildProcess
  stop(): Promise<void>
}

const root = resolve(import.meta.dirname, '..')

export const startWranglerDev = async (o: WranglerDevOptions): Promise<WranglerDev> => {
  const port = o.port || (await freePort())
  const inspectorPort = await freePort() // the default 9229 would collide with anything else debugging here
  const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspectorPort)]
  args.push('--show-interactive-dev-session=false', '--log-level', 'warn')
  if (o.persistTo) args.push('--persist-to', o.persistTo)
  for (const [k, v] of Object.entries(o.vars)) args.push('--var', `${k}:${v}`)
  if (o.args) args.push(...o.args)
  const child = spawn(resolve(root, 'node_modules/.bin/wrangler'), args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() ends wrangler and the workerd it started, nothing else
  })
  let output = ''
  const onData = (chunk: Buffer) => {
    output += chunk.toString()
    for (const line of chunk.toString().split('\n')) if (line.trim()) o.onOutput?.(line)
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<void>((done) => child.once('exit', () => done()))
  // If this process ends without stop() (a crash, an uncaught error), do not leave wrangler and workerd behind.
  const orphanGuard = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  process.once('exit', orphanGuard)
  void exited.then(() => process.off('exit', orphanGuard))

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // gone
      }
    }, 5_000)
    await exited
    clearTimeout(timer)
  }

  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output.slice(-2000)}`)
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })
      if (res.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`wrangler dev did not answer ${url}/healthz in time:\n${output.slice(-2000)}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  return { url, port, inspectorPort, process: child, stop }
}
