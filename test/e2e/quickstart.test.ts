import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { build, type Loader, transform } from 'esbuild'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { launchChromium } from '../support/browser.ts'
import { databaseUrl, freshDatabase, type TestDb } from '../support/db.ts'

/**
 * docs/quickstart.md, run. Every fenced block there carries an id (```ts quickstart:publish-pg); this file reads the
 * blocks by id and runs them in a scratch app that installed the packed tarball with --omit=dev: TypeScript snippets
 * are stripped of their types by esbuild and run as modules (their free variables, like `app`, are the scratch
 * app's), browser snippets are bundled with esbuild and run in Chromium, shell and env blocks run with the test's
 * database and ports in place of the doc's example hosts. The first test fails when the doc gains a block this file
 * does not run, so the two cannot drift apart.
 */
const root = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false' }
const secrets = { EDGE_JWT_SECRET: 'quickstart-test-jwt-secret-0123', RELAY_SECRET: 'quickstart-test-relay-secret-0123' }
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

// The doc's blocks, by id.
const doc = readFileSync(join(root, 'docs/quickstart.md'), 'utf8')
const fences = [...doc.matchAll(/^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm)].map(([, info, code]) => {
  const [lang = '', marker = ''] = info!.trim().split(/\s+/)
  return { lang, id: marker.replace(/^quickstart:/, ''), marked: marker.startsWith('quickstart:'), code: code! }
})
const block = (id: string) => {
  const found = fences.filter((f) => f.id === id)
  if (found.length !== 1) throw new Error(`docs/quickstart.md has ${found.length} blocks quickstart:${id}`)
  return found[0]!.code
}
/** The blocks this file runs, and the test that runs each. */
const TESTED: Record<string, string> = {
  install: 'installs and migrates',
  'migration-files': 'lists the migrations in order',
  'publish-postgres': 'publishes in a transaction',
  'publish-pg': 'publishes in a transaction',
  'publish-drizzle': "runs Drizzle's and Prisma's statements",
  'publish-prisma': "runs Drizzle's and Prisma's statements",
  watch: 'relay.watch',
  'token-hono': 'token endpoints',
  'token-express': 'token endpoints',
  client: 'vanilla client',
  'edge-mount': 'vanilla client',
  'relay-install': 'vanilla client',
  'relay-env': 'vanilla client',
  react: 'React hook',
  cors: 'startNodeEdge and CORS',
  'edge-node': 'startNodeEdge and CORS',
  worker: 'Worker',
  wrangler: 'Worker',
  'wrangler-deploy': 'Worker',
}
/** `KEY=value` lines of an env block (comments dropped). */
const envBlock = (code: string) =>
  Object.fromEntries([...code.matchAll(/^([A-Z_]+)=(\S*)/gm)].map(([, k, v]) => [k!, v!])) as Record<string, string>

let dir: string
let app: string
let db: TestDb
let appOrigin: string
let nodeEdgeUrl: string
const procs: ChildProcess[] = []
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A TypeScript snippet as a module of the scratch app (types stripped, nothing else changed). */
const writeModule = async (name: string, code: string, loader: Loader = 'ts') => {
  const path = join(app, 'snippets', `${name}.mjs`)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, (await transform(code, { loader, format: 'esm', target: 'node20' })).code)
  return path
}
const writeFile = (name: string, text: string) => {
  const path = join(app, name)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
  return path
}
/** Bundles a browser entry of the scratch app (its edge-relay/client and React are the installed ones). */
const bundle = async (entry: string, out: string) => {
  await build({
    entryPoints: [join(app, entry)],
    outfile: join(app, 'public', out),
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    absWorkingDir: app,
    logLevel: 'error',
  })
}

/** Starts a process in the scratch app and waits for `ready` in its output. */
const start = async (args: string[], extra: Record<string, string>, ready: RegExp) => {
  const p = spawn(args[0]!, args.slice(1), { cwd: app, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] })
  procs.push(p)
  let out = ''
  p.stdout!.on('data', (c: Buffer) => (out += c))
  p.stderr!.on('data', (c: Buffer) => (out += c))
  for (let i = 0; ; i++) {
    const m = ready.exec(out)
    if (m) return { p, m, log: () => out }
    if (i > 300 || p.exitCode !== null) throw new Error(`${args.join(' ')} did not start:\n${out}`)
    await sleep(100)
  }
}

/** The doc's createOrder (postgres.js or pg) run in the scratch app for each [tenant, order]: 'ok' or the error. */
const createOrders = async (snippet: string, calls: [string, { id: number; total: string }][]) => {
  const { stdout } = await run(process.execPath, ['create-orders.mjs', snippet, JSON.stringify(calls)], {
    cwd: app,
    env: { ...env, DATABASE_URL: db.url },
  })
  return JSON.parse(stdout) as string[]
}
const eventsOf = async (tenant: string) =>
  (
    await db.sql<{ seq: string; topic: string; data: string }[]>`
    select seq, topic, data::text from relay.events where tenant = ${tenant} order by seq`
  ).map((e) => ({ ...e, seq: Number(e.seq) }))

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edge-relay-quickstart-'))
  app = join(dir, 'app')
  mkdirSync(app)
  db = await freshDatabase('er_qs')
  await db.sql`create table orders (id bigint primary key, tenant_id text not null, total numeric not null, status text not null default 'new')`
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'existing-app', private: true, type: 'module' }))
  // The doc's install line, with the tarball for `edge-relay` (not published yet), plus what the "existing app"
  // already has: pg, express and React, at the versions this repository tests with.
  const [install] = block('install').split('\n')
  expect(install).toBe('npm install edge-relay jose')
  const pin = (name: string) => `${name}@${rootPackage.dependencies[name] ?? rootPackage.devDependencies[name]}`
  const packages = [inject('tarball'), pin('jose'), ...['pg', 'express', 'react', 'react-dom'].map(pin)]
  await run('npm', ['install', '--omit=dev', ...packages], { cwd: app, env, maxBuffer: 16 << 20 })
  writeFile(
    'create-orders.mjs',
    `const [snippet, calls] = process.argv.slice(2)
const { createOrder } = await import(snippet)
const out = []
for (const [tenant, order] of JSON.parse(calls)) {
  try { await createOrder(tenant, order); out.push('ok') } catch (err) { out.push(String(err.message)) }
}
console.log(JSON.stringify(out))
process.exit(0)
`,
  )
}, 300_000)

afterAll(async () => {
  for (const p of procs.reverse())
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM')
      await new Promise((done) => p.once('exit', done))
    }
  await db?.drop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('docs/quickstart.md', () => {
  it('marks every block with an id this file runs', () => {
    expect(fences.filter((f) => !f.marked).map((f) => f.code.slice(0, 60))).toEqual([])
    expect(fences.map((f) => f.id).sort()).toEqual(Object.keys(TESTED).sort())
  })

  it('installs and migrates: `npx edge-relay migrate` creates the schema, and again does nothing', async () => {
    const [, migrate] = block('install').split('\n')
    const bare = `er_qs_bare_${process.pid}`
    await db.sql.unsafe(`create database "${bare}"`)
    try {
      const sh = () => run('bash', ['-c', migrate!], { cwd: app, env: { ...env, DATABASE_URL: databaseUrl(bare) } })
      expect((await sh()).stdout).toMatch(/^applied 0001_outbox\.sql, .*0006_watch_keys\.sql/)
      expect((await sh()).stdout).toMatch(/database is up to date/)
    } finally {
      await db.sql.unsafe(`drop database if exists "${bare}" with (force)`)
    }
  })

  it('lists the migrations in order; applied by your own tool, then by edge-relay migrate, they still work', async () => {
    const [ls, listed] = block('migration-files').trim().split('\n')
    const { stdout } = await run('bash', ['-c', ls!], { cwd: app, env })
    const files = stdout.trim().split(/\s+/)
    expect(files).toEqual(listed!.replace(/^#/, '').trim().split(/\s+/))
    // "Your own tool": each file in that order, each in one transaction.
    const bare = `er_qs_tool_${process.pid}`
    await db.sql.unsafe(`create database "${bare}"`)
    const sql = postgres(databaseUrl(bare), { max: 1, onnotice: () => {} })
    try {
      for (const file of files)
        await sql.begin((tx) => tx.unsafe(readFileSync(join(app, 'node_modules/edge-relay/migrations', file), 'utf8')))
      expect((await sql`select relay.publish('t', 'orders', '{}') as seq`)[0]!.seq).toBe('1')
      // Switching to `edge-relay migrate` later applies the same files again, without harm.
      const { stdout: again } = await run('npx', ['edge-relay', 'migrate'], { cwd: app, env: { ...env, DATABASE_URL: databaseUrl(bare) } })
      expect(again).toMatch(/^applied 0001_outbox\.sql/)
      expect((await sql`select relay.publish('t', 'orders', '{}') as seq`)[0]!.seq).toBe('2')
    } finally {
      await sql.end()
      await db.sql.unsafe(`drop database if exists "${bare}" with (force)`)
    }
  })

  it('publishes in a transaction with postgres.js and node-postgres: committed orders become events, a failed one nothing', async () => {
    for (const [id, tenant, base] of [
      ['publish-postgres', 'pub-js', 100],
      ['publish-pg', 'pub-pg', 200],
    ] as const) {
      const snippet = await writeModule(id, block(id))
      const results = await createOrders(snippet, [
        [tenant, { id: base + 1, total: '12.50' }],
        [tenant, { id: base + 2, total: '99.00' }],
        [tenant, { id: base + 1, total: '1.00' }], // the same id again: the insert fails, the transaction rolls back
      ])
      expect(results.slice(0, 2), id).toEqual(['ok', 'ok'])
      expect(results[2], id).toMatch(/duplicate key/)
      expect(await eventsOf(tenant), id).toEqual([
        { seq: 1, topic: 'orders', data: `{"id": ${base + 1}, "total": "12.50"}` },
        { seq: 2, topic: 'orders', data: `{"id": ${base + 2}, "total": "99.00"}` },
      ])
      expect((await db.sql`select id from orders where tenant_id = ${tenant} order by id`).map((r) => Number(r.id))).toEqual([
        base + 1,
        base + 2,
      ])
    }
  })

  it("runs Drizzle's and Prisma's statements", async () => {
    // Drizzle and Prisma are not installed here (each brings its own toolchain: drizzle-kit, prisma generate). Both
    // send a tagged template as one statement with $1, $2… parameters: Drizzle's node-postgres driver as untyped
    // text, its postgres-js driver with json serialisation switched off, and Prisma with strings typed as text
    // (which is why the doc casts to jsonb; here `$n::text`). So this runs the doc's
    // block as written, with `sql`/`tx.execute` and `tx.$queryRaw` turning the template into that statement and
    // sending it with node-postgres inside a real transaction. (postgres.js's own tagged template would not do:
    // it asks the server for the parameter's type and then JSON-encodes the string a second time.)
    writeFile(
      'orm.mjs',
      `import { readFileSync } from 'node:fs'
import pg from 'pg'
const [kind, bodyFile, tenant, order] = process.argv.slice(2)
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
// Untyped parameters (Drizzle), or strings typed as text (Prisma: hence the doc's ::jsonb).
const statement = (strings, values, typed = false) => ({
  text: strings.reduce((q, s, i) => q + '$' + i + (typed && typeof values[i - 1] === 'string' ? '::text' : '') + s),
  values,
})
const inTransaction = async (fn) => {
  const client = await pool.connect()
  try {
    await client.query('begin')
    const result = await fn(client)
    await client.query('commit')
    return result
  } catch (err) {
    await client.query('rollback')
    throw err
  } finally {
    client.release()
  }
}
const sql = (strings, ...values) => statement(strings, values)
const db = { transaction: (fn) => inTransaction((c) => fn({ execute: (q) => c.query(q) })) }
const prisma = {
  $transaction: (fn) => inTransaction((c) => fn({ $queryRaw: (strings, ...values) => c.query(statement(strings, values, true)).then((r) => r.rows) })),
}
const AsyncFunction = (async () => {}).constructor
await new AsyncFunction(kind, 'sql', 'tenant', 'order', readFileSync(bodyFile, 'utf8'))(kind === 'db' ? db : prisma, sql, tenant, JSON.parse(order))
await pool.end()
`,
    )
    for (const [id, kind, tenant] of [
      ['publish-drizzle', 'db', 'pub-drizzle'],
      ['publish-prisma', 'prisma', 'pub-prisma'],
    ] as const) {
      const code = block(id)
      const imports = code.match(/^import .*$/gm) ?? []
      expect(imports, id).toEqual(id === 'publish-drizzle' ? ["import { sql } from 'drizzle-orm'"] : [])
      const body = writeFile(`${id}.js`, code.replace(/^import .*$/gm, ''))
      for (const order of [
        { id: 1, total: '5.00' },
        { id: 2, total: '7.25', note: 'quotes " and \\ survive' },
      ])
        await run(process.execPath, ['orm.mjs', kind, body, tenant, JSON.stringify(order)], {
          cwd: app,
          env: { ...env, DATABASE_URL: db.url },
        })
      expect(await eventsOf(tenant), id).toEqual([
        { seq: 1, topic: 'orders', data: '{"id": 1, "total": "5.00"}' },
        { seq: 2, topic: 'orders', data: '{"id": 2, "note": "quotes \\" and \\\\ survive", "total": "7.25"}' },
      ])
    }
  })

  it('relay.watch publishes every row change of a table; relay.unwatch stops it', async () => {
    await db.sql.unsafe(block('watch'))
    try {
      await db.sql`insert into orders (id, tenant_id, total) values (900, 'watched', 1)`
      await db.sql`update orders set status = 'paid' where id = 900`
      await db.sql`delete from orders where id = 900`
    } finally {
      await db.sql`select relay.unwatch('orders')`
    }
    await db.sql`insert into orders (id, tenant_id, total) values (901, 'watched', 1)`
    expect((await eventsOf('watched')).map((e) => [e.seq, e.topic, JSON.parse(e.data)])).toEqual([
      [1, 'orders', { op: 'INSERT', id: 900 }],
      [2, 'orders', { op: 'UPDATE', id: 900 }],
      [3, 'orders', { op: 'DELETE', id: 900 }],
    ])
  })

  /** The user's existing apps: sessions by cookie (alice of acme, bob of globex), then the doc's snippets. */
  const users = `{ alice: { id: 'alice', orgId: 'acme' }, bob: { id: 'bob', orgId: 'globex' } }`
  const appToken = async (origin: string, user?: string) =>
    fetch(`${origin}/api/realtime-token`, { method: 'POST', headers: user ? { cookie: `session=${user}` } : {} })

  it('token endpoints (Hono, Express) mint tokens for the session user that the mounted edge accepts', async () => {
    await writeModule('token-hono', block('token-hono'))
    await writeModule('token-express', block('token-express'))
    await writeModule('edge-mount', block('edge-mount'))
    writeFile(
      'hono-app.mjs',
      `import { readFileSync } from 'node:fs'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { getCookie } from 'hono/cookie'
const users = ${users}
const app = new Hono()
app.use('/api/*', async (c, next) => {
  const user = users[getCookie(c, 'session') ?? '']
  if (user) c.set('user', user)
  await next()
})
globalThis.app = app
await import('./snippets/token-hono.mjs')
await import('./snippets/edge-mount.mjs')
const page = (script) => '<!doctype html><p id="status">-</p><div id="root"></div>' +
  '<script>window.orders = []; window.resets = 0; function showOrder(seq, data) { orders.push({ seq, data }) } function reloadOrders() { resets++ }</script>' +
  '<script type="module" src="/js/' + script + '"></script>'
app.get('/page/:script', (c) => c.html(page(c.req.param('script'))))
app.get('/js/:file', (c) => c.body(readFileSync(new URL('./public/' + c.req.param('file'), import.meta.url)), 200, { 'content-type': 'text/javascript' }))
serve({ fetch: app.fetch, port: Number(process.env.APP_PORT), hostname: '127.0.0.1' }, (info) => console.log('app listening on ' + info.port))
`,
    )
    writeFile(
      'express-app.mjs',
      `import express from 'express'
const users = ${users}
const app = express()
app.use((req, _res, next) => {
  const user = users[/(?:^|;\\s*)session=(\\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? '']
  if (user) req.user = user
  next()
})
globalThis.app = app
await import('./snippets/token-express.mjs')
const server = app.listen(Number(process.env.APP_PORT), '127.0.0.1', () => console.log('express listening on ' + server.address().port))
`,
    )
    const [appPort, expressPort] = await Promise.all([freePort(), freePort()])
    appOrigin = `http://127.0.0.1:${appPort}`
    await start([process.execPath, 'hono-app.mjs'], { ...secrets, APP_PORT: String(appPort) }, /app listening/)
    await start(
      [process.execPath, 'express-app.mjs'],
      { EDGE_JWT_SECRET: secrets.EDGE_JWT_SECRET, APP_PORT: String(expressPort) },
      /express listening/,
    )

    for (const origin of [appOrigin, `http://127.0.0.1:${expressPort}`]) {
      expect((await appToken(origin)).status, `${origin}: no session`).toBe(401)
      const res = await appToken(origin, 'alice')
      expect(res.status).toBe(200)
      const { token } = (await res.json()) as { token: string }
      expect(decodeProtectedHeader(token).alg).toBe('HS256')
      const claims = decodeJwt(token)
      expect(claims).toMatchObject({ tenant: 'acme', topics: ['orders'], sub: 'alice' })
      expect(claims.exp! - claims.iat!).toBe(15 * 60)
      const ticket = (body: object) =>
        fetch(`${appOrigin}/realtime/v1/tickets`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      const granted = await ticket({ topics: ['orders'] })
      expect(granted.status, origin).toBe(200)
      expect(await granted.json()).toMatchObject({ tenant: 'acme', topics: ['orders'] })
      expect(await (await ticket({ topics: ['invoices'] })).json()).toMatchObject({ error: { code: 'TOPIC_FORBIDDEN' } })
      const other = await fetch(`${appOrigin}/realtime/v1/tenants/globex/events`, { headers: { authorization: `Bearer ${token}` } })
      expect(other.status).toBe(403)
      expect(await other.json()).toMatchObject({ error: { code: 'TENANT_FORBIDDEN' } })
    }
  })

  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined
  afterAll(async () => browser?.close())

  const presence = async () => {
    const { token } = (await (await appToken(appOrigin, 'alice')).json()) as { token: string }
    const res = await fetch(`${appOrigin}/realtime/v1/tenants/acme/presence`, { headers: { authorization: `Bearer ${token}` } })
    return ((await res.json()) as { subscribers: number }).subscribers
  }
  const waitFor = async <T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000) => {
    for (const end = Date.now() + ms; ; await sleep(100)) {
      const v = await f()
      if (ok(v)) return v
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`)
    }
  }

  it('vanilla client in Chromium receives, in order, the orders a relay (relay.env, systemd unit) delivers to the edge mounted at /realtime', async () => {
    // The standalone edge of the CORS test below, started first so that the one relay delivers to both.
    const cors = envBlock(block('cors'))
    expect(Object.keys(cors)).toEqual(['EDGE_CORS_ORIGINS'])
    const nodeEdge = await writeModule('edge-node', block('edge-node'))
    const { m } = await start(
      ['node', nodeEdge],
      {
        ...secrets,
        HOST: '127.0.0.1',
        PORT: '0',
        EDGE_CORS_ORIGINS: cors.EDGE_CORS_ORIGINS!.replace('https://app.example.com', appOrigin),
      },
      /edge listening on (http:\S+)/,
    )
    nodeEdgeUrl = m[1]!

    // The relay as the unit runs it: its ExecStartPre and ExecStart, with the doc's relay.env.
    const install = block('relay-install')
    const dirOf = /cd (\S+) && sudo npm install --omit=dev edge-relay/.exec(install)![1]!
    for (const path of install.match(/node_modules\/edge-relay\/\S+/g) ?? []) readFileSync(join(app, path)) // each file it copies exists
    const unit = readFileSync(join(app, 'node_modules/edge-relay/deploy/edge-relay.service'), 'utf8')
    expect(unit).toMatch(new RegExp(`^WorkingDirectory=${dirOf}$`, 'm'))
    expect(install).toMatch(/\/etc\/edge-relay\/relay\.env/)
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/edge-relay\/relay\.env$/m)
    const exec = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)![1]!.replace(dirOf, app).split(' ')
    const relayEnv = envBlock(block('relay-env'))
    expect(Object.keys(relayEnv)).toEqual(['DATABASE_URL', 'EDGE_URL', 'RELAY_SECRET'])
    const example = readFileSync(join(app, 'node_modules/edge-relay/deploy/edge-relay.env.example'), 'utf8')
    for (const key of Object.keys(relayEnv)) expect(example).toMatch(new RegExp(`^${key}=`, 'm'))
    const edgeUrl = new URL(relayEnv.EDGE_URL!)
    expect(edgeUrl.pathname).toBe('/realtime') // the mount path of the edge-mount block
    expect(block('edge-mount')).toMatch(/app\.route\('\/realtime'/)
    const relayVars = {
      DATABASE_URL: db.url,
      // The doc's EDGE_URL on this test's host, mount path kept; then the standalone edge.
      EDGE_URL: `${relayEnv.EDGE_URL!.replace(edgeUrl.origin, appOrigin)},${nodeEdgeUrl}`,
      RELAY_SECRET: secrets.RELAY_SECRET,
      RELAY_PORT: String(await freePort()),
    }
    const [pre, ...preArgs] = exec('ExecStartPre')
    expect(preArgs).toEqual(['migrate'])
    await run(pre!, preArgs, { cwd: app, env: { ...env, ...relayVars } })
    const [relayBin, ...relayArgs] = exec('ExecStart')
    expect(relayArgs).toEqual(['relay'])
    await start([relayBin!, ...relayArgs], relayVars, /"msg":"relay started"/)

    writeFile('web/client.ts', block('client'))
    await bundle('web/client.ts', 'client.js')
    browser = await launchChromium()
    await browser.context.addCookies([{ name: 'session', value: 'alice', url: appOrigin }])
    const tab = await browser.context.newPage()
    const errors: string[] = []
    tab.on('pageerror', (err) => errors.push(err.message))
    await tab.goto(`${appOrigin}/page/client.js`)
    await tab.waitForFunction(() => document.querySelector('#status')?.textContent === 'live', undefined, { timeout: 15_000 })
    const snippet = join(app, 'snippets/publish-postgres.mjs')
    expect(
      await createOrders(snippet, [
        ['acme', { id: 301, total: '10.00' }],
        ['globex', { id: 302, total: '20.00' }],
        ['acme', { id: 303, total: '30.00' }],
        ['acme', { id: 304, total: '40.00' }],
      ]),
    ).toEqual(['ok', 'ok', 'ok', 'ok'])
    const orders = () => tab.evaluate(() => (window as unknown as { orders: unknown[] }).orders)
    await waitFor('three orders', orders, (o) => o.length >= 3)
    await sleep(300) // nothing else arrives (globex's order is not acme's)
    expect(await orders()).toEqual([
      { seq: 1, data: { id: 301, total: '10.00' } },
      { seq: 2, data: { id: 303, total: '30.00' } },
      { seq: 3, data: { id: 304, total: '40.00' } },
    ])
    expect(await tab.evaluate(() => (window as unknown as { resets: number }).resets)).toBe(0)
    expect(errors).toEqual([])
    await tab.close()
    await waitFor('the closed tab to leave', presence, (n) => n === 0)
  })

  it('React hook: renders the orders as they arrive, and closes its stream on unmount', async () => {
    writeFile('web/relay.tsx', block('react'))
    writeFile(
      'web/react-main.tsx',
      `import { createRoot } from 'react-dom/client'
import { Orders } from './relay.tsx'
const root = createRoot(document.getElementById('root')!)
root.render(<Orders tenant="acme" />)
;(window as unknown as { unmount: () => void }).unmount = () => root.unmount()
`,
    )
    await bundle('web/react-main.tsx', 'react.js')
    const tab = await browser!.context.newPage()
    const errors: string[] = []
    tab.on('pageerror', (err) => errors.push(err.message))
    await tab.goto(`${appOrigin}/page/react.js`)
    await tab.waitForFunction(() => document.querySelector('#root .status')?.textContent === 'live', undefined, { timeout: 15_000 })
    expect(await presence()).toBe(1)
    await createOrders(join(app, 'snippets/publish-postgres.mjs'), [
      ['acme', { id: 305, total: '50.00' }],
      ['acme', { id: 306, total: '60.00' }],
    ])
    const items = () => tab.evaluate(() => [...document.querySelectorAll('#root li')].map((li) => li.textContent))
    await waitFor('two rendered orders', items, (i) => i.length >= 2)
    expect(await items()).toEqual(['{"id":305,"total":"50.00"}', '{"id":306,"total":"60.00"}'])
    await tab.evaluate(() => (window as unknown as { unmount: () => void }).unmount())
    await waitFor('the unmounted hook to close its stream', presence, (n) => n === 0)
    expect(errors).toEqual([])
    await tab.close()
  })

  it('startNodeEdge and CORS: a page on the listed origin streams from an edge on another origin; an unlisted origin is refused', async () => {
    expect(nodeEdgeUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const health = await fetch(`${nodeEdgeUrl}/healthz`)
    expect(await health.json()).toEqual({ ok: true })
    expect((await fetch(`${nodeEdgeUrl}/metrics`)).status).toBe(200) // startNodeEdge's /metrics
    // The client block with its EDGE set to the standalone edge's URL, as its comment says.
    const client = block('client')
    expect(client).toMatch(/^const EDGE = '\/realtime'/m)
    writeFile('web/client-cross.ts', client.replace(/^const EDGE = '\/realtime'/m, `const EDGE = '${nodeEdgeUrl}'`))
    await bundle('web/client-cross.ts', 'client-cross.js')
    const tab = await browser!.context.newPage()
    const errors: string[] = []
    tab.on('pageerror', (err) => errors.push(err.message))
    await tab.goto(`${appOrigin}/page/client-cross.js`)
    await tab.waitForFunction(() => document.querySelector('#status')?.textContent === 'live', undefined, { timeout: 15_000 })
    await createOrders(join(app, 'snippets/publish-pg.mjs'), [['acme', { id: 307, total: '70.00' }]])
    const orders = () => tab.evaluate(() => (window as unknown as { orders: unknown[] }).orders)
    await waitFor('the order through the standalone edge', orders, (o) => o.length >= 1)
    expect(await orders()).toEqual([{ seq: 6, data: { id: 307, total: '70.00' } }])
    expect(errors).toEqual([])
    // The same request from an origin EDGE_CORS_ORIGINS does not list: the browser withholds the answer.
    const ask = (page: typeof tab) =>
      page.evaluate(
        (url) =>
          fetch(`${url}/v1/tickets`, { method: 'POST', headers: { authorization: 'Bearer x' } }).then(
            (r) => r.status,
            (e: Error) => e.name,
          ),
        nodeEdgeUrl,
      )
    expect(await ask(tab)).toBe(401) // listed: the page reads the edge's answer
    const other = await browser!.context.newPage()
    await other.goto(`${appOrigin.replace('127.0.0.1', 'localhost')}/page/none.js`)
    expect(await ask(other)).toBe('TypeError') // not listed: blocked by CORS
    await other.close()
    await tab.close()
  })

  it('Worker: the entry and wrangler.toml build with `wrangler deploy --dry-run`, with the repository wrangler.toml settings', async () => {
    const entry = block('worker')
    const path = /^\/\/ (\S+)$/m.exec(entry)![1]!
    const toml = block('wrangler')
    expect(toml).toMatch(new RegExp(`^main = "${path}"$`, 'm'))
    writeFile(path, entry)
    writeFile('wrangler.toml', toml)
    // The bindings, migration and compatibility settings are the repository's own.
    const repoToml = readFileSync(join(root, 'wrangler.toml'), 'utf8').split('\n')
    for (const line of toml.split('\n').filter((l) => /^(compatibility_|\[\[|name = "ROOMS"|class_name|tag|new_sqlite_classes)/.test(l)))
      expect(repoToml, line).toContain(line)
    const deploy = block('wrangler-deploy').trim().split('\n')
    expect(deploy.map((l) => l.replace(/\s+#.*$/, ''))).toEqual([
      'npx wrangler secret put EDGE_JWT_SECRET',
      'npx wrangler secret put RELAY_SECRET',
      'npx wrangler deploy',
    ])
    const out = join(dir, 'worker-out')
    const { stdout } = await run(join(root, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out], { cwd: app, env })
    expect(stdout).toMatch(/env\.ROOMS \(TenantRoom\)\s+Durable Object/)
    expect(stdout).toMatch(/env\.EDGE_CORS_ORIGINS \("https:\/\/app\.example\.com"\)/)
    const bundled = readdirSync(out).find((f) => f.endsWith('.js'))!
    expect(readFileSync(join(out, bundled), 'utf8')).toMatch(/TenantRoom = class extends DurableObject/)
  })
})
