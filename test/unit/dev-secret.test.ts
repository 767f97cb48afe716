import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { jwtVerify } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import { devJwtSecret } from '../../scripts/dev-common.ts'

const dir = mkdtempSync(join(tmpdir(), 'er-dev-secret-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("npm start's development EDGE_JWT_SECRET", () => {
  it('is created once, readable by its owner only, and the same on every later start', () => {
    const file = join(dir, '.data', 'dev-edge-jwt-secret')
    const first = devJwtSecret(file)
    expect(first.length).toBeGreaterThanOrEqual(16)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    // .data/ also holds the embedded PostgreSQL, whose initdb runs as another user when npm start runs as root:
    // the directory must stay traversable (the secret file itself is what is private).
    expect(statSync(join(dir, '.data')).mode & 0o011).toBe(0o011)
    expect(devJwtSecret(file)).toBe(first)
  })

  it('replaces a file too short to be a secret, and tightens a loose mode', () => {
    const short = join(dir, 'short')
    writeFileSync(short, 'abc\n', { mode: 0o644 })
    const secret = devJwtSecret(short)
    expect(secret.length).toBeGreaterThanOrEqual(16)
    expect(statSync(short).mode & 0o777).toBe(0o600)
  })

  it('edge-relay token mints a token for a tenant and topics with EDGE_JWT_SECRET', async () => {
    const secret = 'a-development-secret-of-some-length'
    const root = resolve(import.meta.dirname, '../..')
    const args = ['bin/edge-relay.mjs', 'token', 'acme', '--topics', 'orders,users*', '--sub', 'dev', '--ttl', '7200']
    const token = execFileSync(process.execPath, args, {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', EDGE_JWT_SECRET: secret },
      encoding: 'utf8',
    }).trim()
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] })
    expect(payload).toMatchObject({ tenant: 'acme', topics: ['orders', 'users*'], sub: 'dev' })
    expect(payload.exp! - payload.iat!).toBe(2 * 3600)
  })
})
