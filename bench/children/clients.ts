import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import postgres from 'postgres'
import { serveChild } from '../lib/child.ts'
import { newHist, nowMs, record } from '../lib/hist.ts'

/**
 * Many SSE clients in one process, on raw node:http requests, parsing cheaply: each event's data carries `"t":`
 * (the writer's monotonic clock just before it committed); latency = now − t. Events stamped before the current
 * window are ignored, so warm-up and leftovers from earlier phases never count.
 */
let hist = newHist()
let received = 0
/** Every event parsed, in the window or not: tells a backlogged server from a finished one. */
let frames = 0
let windowStart = Infinity
let closed = 0
const open = new Set<ClientRequest>()

const onText = (s: string) => {
  const now = nowMs()
  let i = 0
  while ((i = s.indexOf('"t":', i)) !== -1) {
    i += 4
    const t = parseFloat(s.slice(i, i + 24))
    frames++
    if (t >= windowStart) {
      received++
      record(hist, now - t)
    }
  }
}

/** One connection: frames may split across chunks, so only complete frames (up to the last blank line) are read. */
const consume = (res: IncomingMessage) => {
  let rest = ''
  res.setEncoding('latin1')
  res.on('data', (chunk: string) => {
    const s = rest.length ? rest + chunk : chunk
    const end = s.lastIndexOf('\n\n')
    if (end === -1) {
      rest = s
      return
    }
    rest = end + 2 < s.length ? s.slice(end + 2) : ''
    onText(end + 2 < s.length ? s.slice(0, end + 2) : s)
  })
}

const connectOne = (base: string, path: string, headers: Record<string, string>) =>
  new Promise<boolean>((resolve) => {
    const req = request(base + path, { headers: { accept: 'text/event-stream', ...headers }, agent: false })
    req.on('error', () => resolve(false))
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        return resolve(false)
      }
      open.add(req)
      res.on('close', () => (open.delete(req), closed++))
      consume(res)
      resolve(true)
    })
    req.end()
  })

let listener: postgres.Sql | undefined

serveChild(
  {
    async connect(m) {
      const { base, conns, concurrency = 100 } = m as { base: string; conns: { path: string; headers: Record<string, string> }[]; concurrency?: number }
      let next = 0
      let ok = 0
      const t0 = Date.now()
      await Promise.all(
        Array.from({ length: Math.min(concurrency, conns.length) }, async () => {
          while (next < conns.length) {
            const c = conns[next++]!
            if (await connectOne(base, c.path, c.headers)) ok++
          }
        }),
      )
      return { ok, failed: conns.length - ok, ms: Date.now() - t0 }
    },
    window(m) {
      windowStart = m.start as number
      hist = newHist()
      received = 0
      return {}
    },
    stats: () => ({ hist, received, frames, open: open.size, closed }),
    async listen(m) {
      listener = postgres(m.url as string, { max: 1, onnotice: () => {} })
      await listener.listen(m.channel as string, onText)
      return {}
    },
    close() {
      for (const r of open) r.destroy()
      open.clear()
      return {}
    },
  },
  async () => {
    for (const r of open) r.destroy()
    await listener?.end({ timeout: 1 })
  },
).ready({})
