import { execFile } from 'node:child_process'
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'

/** pgbench from PATH or the Debian layout; undefined when neither exists (we then use a Node writer). */
const findPgbench = () => {
  for (const dir of (process.env.PATH ?? '').split(':')) if (existsSync(join(dir, 'pgbench'))) return join(dir, 'pgbench')
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) if (existsSync(join(root, v, 'bin/pgbench'))) return join(root, v, 'bin/pgbench')
  return undefined
}

export interface Publishers {
  url: string
  clients: number
  seconds: number
  /** Which tenant each transaction publishes to: its client's own, one for all, or one of `n` at random. */
  tenants: 'per-client' | 'one' | number
  /** false: the sessions set relay.notify = 'off' (poll mode's writers), so publish() sends no NOTIFY. */
  notify: boolean
}

/**
 * Saturating publishers: `clients` sessions committing one relay.publish() per transaction, back to back, for
 * `seconds`. Returns the transactions committed and what ran them (pgbench when installed, else postgres.js).
 */
export const publishers = async (p: Publishers): Promise<{ events: number; tool: string }> => {
  const prefix = p.notify ? 'n' : 'p'
  const what = `${p.clients} clients, 1 publish per transaction, ${p.tenants === 'per-client' ? 'a tenant per client' : p.tenants === 'one' ? 'one tenant' : `${p.tenants} tenants`}${p.notify ? '' : ", relay.notify = 'off'"}`
  const pgbench = findPgbench()
  if (pgbench) {
    const tenant = p.tenants === 'per-client' ? `'${prefix}' || :client_id` : p.tenants === 'one' ? `'${prefix}hot'` : `'${prefix}' || :n`
    const script = join(tmpdir(), `edge-relay-bench-${process.pid}-${Date.now()}.sql`)
    writeFileSync(
      script,
      `\\set n random(1, ${typeof p.tenants === 'number' ? p.tenants : 1})\nselect relay.publish(${tenant}, 'bench', '{"x": 1}');\n`,
    )
    try {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          pgbench,
          ['-n', '-c', String(p.clients), '-j', String(Math.min(2, p.clients)), '-T', String(p.seconds), '-f', script, p.url],
          // PGOPTIONS sets relay.notify for every pgbench session, as `alter database … set` would for an app's.
          { timeout: (p.seconds + 60) * 1000, env: { ...process.env, PGOPTIONS: p.notify ? '' : '-c relay.notify=off' } },
          (err, stdout, stderr) => (err ? reject(new Error(`pgbench failed: ${stderr || err.message}`)) : resolve(stdout)),
        ),
      )
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? NaN)
      return { events: processed, tool: `pgbench (${what})` }
    } finally {
      rmSync(script, { force: true })
    }
  }
  // No pgbench: the same transactions from Node, `clients` connections in tight loops.
  const sql = postgres(p.url, { max: p.clients, onnotice: () => {}, connection: p.notify ? {} : { 'relay.notify': 'off' } })
  const until = Date.now() + p.seconds * 1000
  let events = 0
  await Promise.all(
    Array.from({ length: p.clients }, async (_, client) => {
      while (Date.now() < until) {
        const n = typeof p.tenants === 'number' ? 1 + Math.floor(Math.random() * p.tenants) : client
        await sql`select relay.publish(${p.tenants === 'one' ? `${prefix}hot` : `${prefix}${n}`}, 'bench', '{"x": 1}'::jsonb)`
        events++
      }
    }),
  )
  await sql.end({ timeout: 1 })
  return { events, tool: `Node writer (${what}; pgbench not found)` }
}
