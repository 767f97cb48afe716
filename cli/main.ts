/**
 * `edge-relay <command>`: the command-line entry (bin/edge-relay.mjs runs the built dist/cli/main.js, or this file
 * through tsx in a checkout). The long-running commands are the same entries as the npm scripts; each reads its
 * variables from the environment (docs/configuration.md).
 */
import { parseArgs } from 'node:util'
import * as v from 'valibot'
import { splitList } from '../shared/env.ts'
import { TenantId, Topic, TopicGrant } from '../shared/schema.ts'

const COMMANDS = {
  migrate: `usage: edge-relay migrate

  Applies the relay's SQL migrations (schema relay) to DATABASE_URL; running it again applies nothing.
  Or apply migrations/*.sql, in name order, with your own migration tool.`,
  relay: `usage: edge-relay relay

  The relay: LISTENs on DATABASE_URL and posts signed batches to the edges in EDGE_URL (RELAY_SECRET), with
  /healthz and /metrics on RELAY_HOST:RELAY_PORT (default 127.0.0.1:8788). Run two for a hot standby.`,
  serve: `usage: edge-relay serve

  The relay and a Node edge in one process (the single-VM deployment): the relay's variables and the edge's
  together; EDGE_URL is optional and lists further edges. The edge listens on HOST:PORT (default 0.0.0.0:8787).`,
  edge: `usage: edge-relay edge

  The Node edge alone: SSE streams for browsers, POST /internal/publish for the relay. Needs RELAY_SECRET and
  EDGE_JWT_SECRET (or EDGE_JWKS_URL / EDGE_JWT_PUBLIC_KEY); listens on HOST:PORT (default 0.0.0.0:8787).`,
  tail: `usage: edge-relay tail <tenant> [--topics a,b] [--from <seq>] [--url <edge>] [--token <jwt>] [--json]

  Prints a tenant's events as they arrive, like tail -f; Ctrl-C stops.

  --topics a,b   only these topics (default: every topic the token grants)
  --from <seq>   first replay the events after <seq> that the edge still holds (0 = all of them)
  --url <edge>   the edge's base URL (default: $EDGE_URL, else http://127.0.0.1:8787)
  --token <jwt>  a token for the tenant (default: $EDGE_RELAY_TOKEN; edge-relay token mints one)
  --json         one JSON object per line: {"seq":…,"topic":…,"data":…}`,
  token: `usage: edge-relay token <tenant> [--topics a,b] [--sub <id>] [--ttl <seconds>]

  Prints an HS256 app token for <tenant>, signed with $EDGE_JWT_SECRET (unset: the development secret npm start
  keeps in .data/dev-edge-jwt-secret), as your app's backend would mint one (for development and tests).

  --topics a,b       the topics (or prefix* grants) it grants (default: every topic)
  --sub <id>         its subject, counted by EDGE_MAX_CONNECTIONS_PER_SUBJECT
  --ttl <seconds>    its lifetime (default 3600)`,
} as const

type Command = keyof typeof COMMANDS

const USAGE = `usage: edge-relay <command> [options]

commands:
  migrate   apply the SQL migrations to DATABASE_URL
  relay     run the relay (LISTEN → edges)
  serve     run the relay and a Node edge in one process
  edge      run a Node edge
  tail      print a tenant's events as they arrive
  token     mint a development app token from EDGE_JWT_SECRET

edge-relay <command> --help says more; the variables are in docs/configuration.md.`

const fail = (msg: string, command?: Command) => {
  process.stderr.write(`edge-relay: ${msg}\n\n${command ? COMMANDS[command] : USAGE}\n`)
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
      sub: { type: 'string' },
      ttl: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })

/** The options each command takes (`--help` aside). */
const OPTIONS: Record<Command, string[]> = {
  migrate: [],
  relay: [],
  serve: [],
  edge: [],
  tail: ['topics', 'from', 'url', 'token', 'json'],
  token: ['topics', 'sub', 'ttl'],
}

const isCommand = (c: string | undefined): c is Command => c !== undefined && Object.hasOwn(COMMANDS, c)

/** Runs one command; a number is the exit code, undefined when a long-running command now owns the process. */
export const main = async (argv: string[]): Promise<number | undefined> => {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    return fail((err as Error).message, isCommand(argv[0]) ? argv[0] : undefined)
  }
  const { values, positionals } = parsed
  const [command, ...args] = positionals
  if (!isCommand(command)) {
    if (values.help || command === 'help') return (process.stdout.write(`${USAGE}\n`), 0)
    return fail(command ? `unknown command ${command}` : 'missing command')
  }
  if (values.help) return (process.stdout.write(`${COMMANDS[command]}\n`), 0)
  const used = Object.entries(values).filter(([k, x]) => x !== undefined && x !== false && k !== 'help')
  const stray = used.find(([k]) => !OPTIONS[command].includes(k))
  if (stray) return fail(`--${stray[0]} is not an option of ${command}`, command)
  if (command === 'tail' || command === 'token') return tenantCommand(command, args, values)
  if (args.length) return fail(`unexpected arguments: ${args.join(' ')}`, command)
  // The long-running commands are the npm scripts' entries (relay/main.ts and cli/serve.ts start when imported).
  if (command === 'migrate') return (await import('../relay/migrate-cli.ts')).runMigrate()
  if (command === 'relay') await import('../relay/main.ts')
  else if (command === 'serve') await import('./serve.ts')
  else (await import('../edge/platform/node.ts')).runNodeEdge()
  return undefined
}

const tenantCommand = async (command: 'tail' | 'token', args: string[], values: ReturnType<typeof parse>['values']) => {
  const [tenant, ...extra] = args
  if (!tenant || !v.is(TenantId, tenant))
    return fail(`tenant must match ^[A-Za-z0-9_-]{1,64}$, got ${JSON.stringify(tenant ?? '')}`, command)
  if (extra.length) return fail(`unexpected arguments: ${extra.join(' ')}`, command)
  const topics = values.topics === undefined ? undefined : splitList(values.topics)
  const bad = topics?.find((t) => !v.is(command === 'token' ? TopicGrant : Topic, t))
  if (bad) return fail(`invalid topic ${JSON.stringify(bad)}`, command)
  return command === 'tail' ? runTail(tenant, topics, values) : runToken(tenant, topics, values)
}

const runToken = async (tenant: string, topics: string[] | undefined, values: ReturnType<typeof parse>['values']) => {
  const { mintToken, readDevSecret } = await import('./token.ts')
  const secret = process.env.EDGE_JWT_SECRET || readDevSecret()
  if (!secret || secret.length < 16) return fail('EDGE_JWT_SECRET must be set (16 characters or more): the edge verifies with it', 'token')
  if (values.ttl !== undefined && !/^[1-9]\d{0,7}$/.test(values.ttl)) return fail('--ttl must be a whole number of seconds', 'token')
  const token = await mintToken(secret, { tenant, topics, sub: values.sub, ttlS: Number(values.ttl ?? 3600) })
  process.stdout.write(`${token}\n`)
  return 0
}

const runTail = async (tenant: string, topics: string[] | undefined, values: ReturnType<typeof parse>['values']) => {
  if (values.from !== undefined && !/^\d{1,16}$/.test(values.from)) return fail('--from must be a seq (a whole number)', 'tail')
  const token = values.token ?? process.env.EDGE_RELAY_TOKEN
  if (!token) return fail('a token is required: --token <jwt> or EDGE_RELAY_TOKEN (edge-relay token <tenant> mints one)', 'tail')
  const url = values.url ?? process.env.EDGE_URL?.split(',')[0] ?? 'http://127.0.0.1:8787'
  if (!/^https?:\/\/\S+$/.test(url)) return fail(`--url must be an http(s) URL, got ${url}`, 'tail')

  const abort = new AbortController()
  process.once('SIGINT', () => abort.abort())
  process.once('SIGTERM', () => abort.abort())
  // `edge-relay tail … | head` closes our stdout: that is a normal way to stop.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? abort.abort() : undefined))
  const { tail } = await import('./tail.ts')
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
