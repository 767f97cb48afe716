import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Every child this run started, by PID, so that the end of the run (or a crash) stops exactly those. */
const children = new Set<ChildProcess>()

export interface Child {
  proc: ChildProcess
  /** What the child announced when ready (e.g. its URL). */
  info: Record<string, unknown>
  call<T = Record<string, unknown>>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>
  stop(): Promise<void>
}

let nextId = 0

/**
 * Starts `bench/<file>` under tsx with an IPC channel and resolves once it sends `{ ready }`. Children exit on their
 * own when the parent disappears (see child.ts), and `stopAll` kills any left by PID.
 */
export const startChild = (
  file: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  readyTimeoutMs = 30_000,
): Promise<Child> => {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url))
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  })
  children.add(proc)
  proc.once('exit', () => children.delete(proc))
  const pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} not ready after ${readyTimeoutMs} ms`)), readyTimeoutMs)
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${file} exited with ${code} before it was ready`))
      for (const p of pending.values()) p.reject(new Error(`${file} exited (${code})`))
    })
    proc.on('message', (m: { ready?: Record<string, unknown>; reply?: number; error?: string }) => {
      if (m.ready) {
        clearTimeout(timer)
        resolve({
          proc,
          info: m.ready,
          call: (cmd, args = {}, timeoutMs = 120_000) =>
            new Promise((res, rej) => {
              const id = ++nextId
              const t = setTimeout(() => (pending.delete(id), rej(new Error(`${file}: ${cmd} timed out`))), timeoutMs)
              pending.set(id, { resolve: res as never, reject: rej, timer: t })
              proc.send({ id, cmd, ...args })
            }),
          stop: () => stopChild(proc),
        })
      } else if (m.reply !== undefined) {
        const p = pending.get(m.reply)
        if (!p) return
        pending.delete(m.reply)
        clearTimeout(p.timer)
        if (m.error) p.reject(new Error(`${file}: ${m.error}`))
        else p.resolve(m as never)
      }
    })
  })
}

/** Asks a child to exit (so --cpu-prof profiles get written), then kills it by PID after a grace period. */
export const stopChild = (proc: ChildProcess, graceMs = 5_000): Promise<void> =>
  new Promise((done) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return done()
    const timer = setTimeout(() => {
      if (proc.pid) process.kill(proc.pid, 'SIGKILL')
    }, graceMs)
    proc.once('exit', () => (clearTimeout(timer), done()))
    if (proc.connected) proc.send({ cmd: 'exit' })
    else if (proc.pid) process.kill(proc.pid, 'SIGTERM')
  })

/** Kills every child still running, by PID. */
export const killAll = () => {
  for (const c of children)
    if (c.pid && c.exitCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
}
