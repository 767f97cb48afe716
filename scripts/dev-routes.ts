/**
 * Development-only routes that `npm start` adds to the Node edge: the live-tail page, its scripts (TypeScript from
 * this repository, transpiled on request) and `POST /dev/publish`, which calls `relay.publish()` in Postgres for
 * the page's "publish a test event" form. They live here, outside edge/, because the edge never touches Postgres;
 * this process already holds the relay's connection pool, and nothing here is served by `npm run edge`.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Sql } from 'postgres'
import ts from 'typescript'
import * as v from 'valibot'
import { tokenFrom, type Auth } from '../edge/auth.ts'
import { UNREAD_BODY } from '../edge/limits.ts'
import { RelayError } from '../shared/errors.ts'
import { parseJsonBody } from '../shared/json.ts'
import { Topic } from '../shared/schema.ts'

const root = resolve(import.meta.dirname, '..')

/** The only files the page may load: browser-safe modules with no dependencies. */
const MODULES = new Set([
  'shared/client.ts',
  'shared/client-transport.ts',
  'shared/protocol.ts',
  'shared/resume.ts',
  'shared/sse-parse.ts',
  'shared/topics.ts',
  'web/tail.ts',
])

const DevPublish = v.object({ topic: Topic, data: v.unknown() })

const transpile = async (file: string) => {
  const source = await readFile(join(root, file), 'utf8')
  return ts.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      // `./protocol.ts` → `./protocol.js`, which this route serves too.
      rewriteRelativeImportExtensions: true,
    },
  }).outputText
}

export interface DevRoutesOptions {
  /** Verifies the page's token (the edge's own auth). */
  auth: Auth
  /** The relay's pool: the form publishes with `relay.publish()`, as an app would. */
  sql: Sql
  /**
   * The edge's EDGE_MAX_EVENT_BYTES: a body past it (plus room for the topic) is refused unread. The database
   * refuses what is over its own relay.max_event_bytes, with its message.
   */
  maxEventBytes: number
  /**
   * This process's relay role, for the page: a standby (another relay leads the database) delivers nothing to this
   * edge, and the page says so rather than wait in silence.
   */
  relayRole?: () => 'leader' | 'standby' | undefined
}

/** Adds the development page and its publish endpoint to an edge app (see NodeEdgeOptions.extend). */
export const devRoutes =
  ({ auth, sql, maxEventBytes, relayRole }: DevRoutesOptions) =>
  (app: Hono) => {
    for (const path of ['/', '/tail'])
      app.get(path, async (c) => c.html(await readFile(join(root, 'web/tail.html'), 'utf8'), 200, { 'cache-control': 'no-store' }))

    app.get('/dev/config', (c) => c.json({ publish: true, relay: relayRole?.() ?? null }))

    // The tenant's head now: the page marks the events it then receives up to it as replayed (committed before the
    // connection opened), since SSE frames carry no commit time and no replay flag (the frame format is public).
    app.get('/dev/head', async (c) => {
      const claims = await auth.verify(tokenFrom(c.req))
      const [row] = await sql<{ seq: string }[]>`select seq from relay.heads where tenant = ${claims.tenant}`
      return c.json({ tenant: claims.tenant, head: Number(row?.seq ?? 0) }, 200, { 'cache-control': 'no-store' })
    })

    app.get('/dev/src/*', async (c) => {
      const file = c.req.path.slice('/dev/src/'.length).replace(/\.js$/, '.ts')
      if (!MODULES.has(file)) throw new RelayError('NOT_FOUND', `no development module ${file}`)
      return c.body(await transpile(file), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' })
    })

    const limit = bodyLimit({
      maxSize: maxEventBytes + 1024,
      onError: () => {
        throw new RelayError('TOO_LARGE', `event over ${maxEventBytes} bytes (EDGE_MAX_EVENT_BYTES)`, UNREAD_BODY)
      },
    })
    app.post('/dev/publish', limit, async (c) => {
      const claims = await auth.verify(tokenFrom(c.req))
      const text = await c.req.text()
      const body = v.safeParse(DevPublish, parseJsonBody(text, 'send JSON: {"topic": "greetings", "data": {…}}'))
      if (!body.success)
        throw new RelayError('INVALID_BODY', body.issues.map((i) => `${v.getDotPath(i) ?? 'body'}: ${i.message}`).join('; '))
      if (body.output.data === undefined) throw new RelayError('INVALID_BODY', 'data is required (any JSON value)')
      try {
        const [row] = await sql<{ seq: string }[]>`
          select relay.publish(${claims.tenant}, ${body.output.topic}, ${sql.json(body.output.data as never)}) as seq`
        return c.json({ tenant: claims.tenant, seq: Number(row!.seq) })
      } catch (err) {
        // Postgres refuses bad input with a clear message (size, names): pass it on.
        throw new RelayError('INVALID_BODY', `relay.publish refused: ${(err as Error).message}`)
      }
    })
  }
