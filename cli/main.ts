/**
 * `edge-relay <command>`: the command-line entry (bin/edge-relay.mjs loads it through tsx). The only file of the
 * command that touches `process` (cli/serve.ts is `npm run serve`'s entry, apart from the command).
 */
import { parseArgs } from 'node:util'
import * as v from 'valibot'
import { TenantId, Topic } from '../shared/schema.ts'
import { tail } from './tail.ts'

const USAGE = `usage: edge-relay tail <tenant> [--topics a,b] [--from <seq>] [--url <edge>] [--token <jwt>] [--json]

  Prints a tenant's events as they arrive, like tail -f; Ctrl-C stops.

  --topics a,b   only these topics (default: every topic the token grants)
  --from <seq>   first replay the events after <seq> that the edge still holds (0 = all of them)
  --url <edge>   the edge's base URL (default: $EDGE_URL, else http://127.0.0.1:8787)
  --token <jwt>  a token for the tenant (default: $EDGE_RELAY_TOKEN); npm start prints one
  --json         one JSON object per line: {"seq":…,"topic":…,"data":…}
`

const fail = (msg: string) => {
  process.stderr.write(`edge-relay: ${msg}\n\n${USAGE}`)
  return 2
}

/** The command line, parsed (throws on an unknown option or a missing value). */
const parse = (argv: string[]) =>
  parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      topics: { type: 'string' },
      from: { type: 'string' },
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })

export const main = async (argv: string[]): Promise<number> => {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    return fail((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) return (process.stdout.write(USAGE), 0)
  const [command, tenant, ...extra] = positionals
  if (command !== 'tail') return fail(command ? `unknown command ${command}` : 'missing command')
  if (!tenant || !v.is(TenantId, tenant)) return fail(`tenant must match ^[A-Za-z0-9_-]{1,64}$, got ${JSON.stringify(tenant ?? '')}`)
  if (extra.length) return fail(`unexpected arguments: ${extra.join(' ')}`)
  const topics = values.topics
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  const bad = topics?.find((t) => !v.is(Topic, t))
  if (bad) return fail(`invalid topic ${JSON.stringify(bad)}`)
  if (values.from !== undefined && !/^\d{1,16}$/.test(values.from)) return fail('--from must be a seq (a whole number)')
  const token = values.token ?? process.env.EDGE_RELAY_TOKEN
  if (!token) return fail('a token is required: --token <jwt> or EDGE_RELAY_TOKEN')
  const url = values.url ?? process.env.EDGE_URL?.split(',')[0] ?? 'http://127.0.0.1:8787'
  if (!/^https?:\/\/\S+$/.test(url)) return fail(`--url must be an http(s) URL, got ${url}`)

  const abort = new AbortController()
  process.once('SIGINT', () => abort.abort())
  process.once('SIGTERM', () => abort.abort())
  // `edge-relay tail … | head` closes our stdout: that is a normal way to stop.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? abort.abort() : undefined))
  return tail({
    url,
    tenant,
    token,
    ...(topics?.length ? { topics } : {}),
    ...(values.from !== undefined ? { from: Number(values.from) } : {}),
    json: values.json,
    color: process.stdout.isTTY && !process.env.NO_COLOR,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    signal: abort.signal,
  })
}
