import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import postgres from 'postgres'
import { serveChild } from '../lib/child.ts'
import { newHist, nowMs, record } from '../lib/hist.ts'

/**
 * Many SSE clients in one process, parsing cheaply: each event's data carries `"t":` (the writer's monotonic clock
 * just before it committed); latency = now − t. Only events stamped inside the window [start, …) and parsed before
 * its end count, so warm-up, leftovers from earlier phases and a collapsed server's late backlog never do.
 *
 * Connections are plain TCP sockets with a hand-written GET (BENCH_CLIENT=http: node:http requests instead). The
 * body is scanned as bytes arrive, without de-chunking: our Node edge and the other servers here write whole frames
 * per HTTP chunk, so chunk-size lines fall between frames, never inside `"t":<number>`. workerd and wrangler dev's
 * proxy do not promise that, so their connections ask for `dechunk`. node:http's parser and streams cost about
 * twice the CPU per chunk, and on two cores the clients' CPU is the server's latency.
 */
const useHttp = process.env.BENCH_CLIENT === 'http'
let hist = newHist()
let received = 0
let windowEnd = Infinity
/** Every event parsed, in the window or not: tells a backlogged server from a finished one. */
let frames = 0
let windowStart = Infinity
let closed = 0
const open = new Set<{ destroy(): void }>()

const onText = (s: string) => {
  const now = nowMs()
  let i = 0
  while ((i = s.indexOf('"t":', i)) !== -1) {
    i += 4
    const t = parseFloat(s.slice(i, i + 24))
    frames++
    if (t >= windowStart && now <= windowEnd) {
      received++
      record(hist, now - t)
    }
  }
}

/** Frames may split across reads, so only complete frames (up to the last blank line) are scanned. */
const scanner = () => {
  let rest = ''
  return (chunk: string) => {
    const s = rest.length ? rest + chunk : chunk
    const end = s.lastIndexOf('\n\n')
    if (end === -1) {
      rest = s
      return
    }
    rest = end + 2 < s.length ? s.slice(end + 2) : ''
    onText(end + 2 < s.length ? s.slice(0, end + 2) : s)
  }
}

/**
 * HTTP/1.1 chunked transfer coding undone, for servers that may cut a frame across chunks (a size line could then
 * fall inside `"t":<number>` or between a frame's two newlines). Latin-1 text: one character per byte.
 */
const dechunker = (next: (body: string) => void) => {
  /** Bytes of the current chunk still to come. */
  let left = 0
  /** A size line cut across reads. */
  let line = ''
  return (s: string) => {
    let body = ''
    let i = 0
    while (i < s.length) {
      if (left > 0) {
        const take = Math.min(left, s.length - i)
        body += i === 0 && take === s.length ? s : s.slice(i, i + take)
        left -= take
        i += take
        continue
      }
      const eol = s.indexOf('\n', i)
      if (eol === -1) {
        line += s.slice(i)
        break
      }
      // A size (hex, maybe `;extensions`), or the empty line that ends a chunk's data (NaN: skipped).
      const size = Number.parseInt(line + s.slice(i, eol), 16)
      line = ''
      i = eol + 1
      if (size > 0) left = size
    }
    if (body) next(body)
  }
}

const connectHttp = (base: string, path: string, headers: Record<string, string>) =>
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
      res.setEncoding('latin1')
      res.on('data', scanner())
      resolve(true)
    })
    req.end()
  })

const connectRaw = (base: string, path: string, headers: Record<string, string>, dechunk: boolean) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(base)
    const socket: Socket = connect({ host: hostname, port: Number(port), noDelay: true })
    socket.setEncoding('latin1')
    let head = ''
    let scan: ((chunk: string) => void) | undefined
    socket.on('error', () => resolve(false))
    socket.on('close', () => (open.delete(socket), closed++, resolve(false)))
    socket.on('data', (chunk: string) => {
      if (scan) return scan(chunk)
      head += chunk
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      if (!head.startsWith('HTTP/1.1 200')) {
        socket.destroy()
        return resolve(false)
      }
      open.add(socket)
      scan = dechunk && /\r\ntransfer-encoding: *chunked/i.test(head.slice(0, end)) ? dechunker(scanner()) : scanner()
      scan(head.slice(end + 4))
      resolve(true)
    })
    const lines = Object.entries({ host: `${hostname}:${port}`, accept: 'text/event-stream', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`)
    socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`)
  })

const connectOne = (base: string, path: string, headers: Record<string, string>, dechunk: boolean) =>
  useHttp ? connectHttp(base, path, headers) : connectRaw(base, path, headers, dechunk)

let listener: postgres.Sql | undefined

serveChild(
  {
    async connect(m) {
      const {
        base,
        conns,
        concurrency = 100,
        dechunk = false,
      } = m as { base: string; conns: { path: string; headers: Record<string, string> }[]; concurrency?: number; dechunk?: boolean }
      let next = 0
      let ok = 0
      const t0 = Date.now()
      await Promise.all(
        Array.from({ length: Math.min(concurrency, conns.length) }, async () => {
          while (next < conns.length) {
            const c = conns[next++]!
            if (await connectOne(base, c.path, c.headers, dechunk)) ok++
          }
        }),
      )
      return { ok, failed: conns.length - ok, ms: Date.now() - t0 }
    },
    window(m) {
      windowStart = m.start as number
      windowEnd = (m.end as number | undefined) ?? 1e18
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
    /** Ends the LISTEN: later phases publish on the same channel (the floor server's feed) and must not count twice. */
    async unlisten() {
      await listener?.end({ timeout: 1 })
      listener = undefined
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
