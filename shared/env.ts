import * as v from 'valibot'
import { RelayError } from './errors.ts'
import type { Level } from './log.ts'

/*
 * The pieces every process's configuration schema is built from (edge/config.ts, relay/config.ts). Each variable's
 * default is written once, where its schema entry is. A refusal reads "<VARIABLE>: <problem>".
 */

/** A whole number within bounds. */
export const wholeNumber = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, 'must be a whole number'),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )

/** An optional whole number within bounds, `fallback` when unset. */
export const intVar = (min: number, max: number, fallback: number) => v.optional(wholeNumber(min, max), String(fallback))

/** A secret of 16 characters or more; required unless wrapped in v.optional. */
export const secretVar = () => v.pipe(v.string('required'), v.minLength(16, 'must be at least 16 characters'))

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

const IP = v.pipe(v.string(), v.ip())

/** A DNS name of RFC 1123 labels (`localhost`, `edge.internal`); dotted digits are taken as an IPv4 address. */
const isHostname = (s: string) => s.length <= 253 && s.split('.').every((label) => LABEL.test(label)) && !/^[\d.]+$/.test(s)

/** An address to listen on: a hostname, or an IPv4 or IPv6 address (`0.0.0.0`, `::`). */
export const hostVar = (fallback: string) =>
  v.pipe(
    v.optional(v.string(), fallback),
    v.check((s) => isHostname(s) || v.is(IP, s), 'must be a hostname or an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)'),
  )

/** Comma-separated values, trimmed, blanks dropped: lists of variables and of command-line options. */
export const splitList = (s: string): string[] => s.split(',').flatMap((x) => x.trim() || [])

/** A comma-separated variable (see splitList). */
export const listVar = v.pipe(v.string(), v.transform(splitList))

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const satisfies readonly Level[]

/** LOG_LEVEL: lines below it are not written (shared/log.ts). */
export const logLevelVar = v.optional(v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`), 'info')

/**
 * A check across variables, for the end of a schema's pipe: `ok` sees the values of `names` (and only runs when
 * none of them was refused on its own); a failure is reported under `name`, so it is listed with every other bad
 * variable.
 */
export const acrossVars = <T extends object>(
  names: readonly (keyof T & string)[],
  ok: (values: Partial<T>) => boolean,
  name: keyof T & string,
  message: string,
) =>
  v.rawCheck<T>(({ dataset, addIssue }) => {
    const refused = new Set(dataset.issues?.map((issue) => v.getDotPath(issue)))
    if (names.some((n) => refused.has(n))) return
    const values = dataset.value as Partial<T>
    if (!ok(values))
      addIssue({
        message,
        path: [{ type: 'object', origin: 'value', input: values as Record<string, unknown>, key: name, value: values[name] }],
      })
  })

/** Variables no longer read, and what took over: refused, since a limit that silently stopped applying is worse. */
export const RETIRED: Readonly<Record<string, string | undefined>> = {
  EDGE_CLOCK_SKEW_S: undefined,
  EDGE_JWKS_COOLDOWN_S: undefined,
  EDGE_JWKS_MAX_AGE_S: undefined,
  EDGE_MAX_QUERY_BYTES: undefined,
  EDGE_MAX_PUBLISH_BYTES: 'EDGE_MAX_EVENT_BYTES',
  RETRY_MS: undefined,
  SUBSCRIBER_QUEUE_EVENTS: 'SUBSCRIBER_QUEUE_BYTES',
  RELAY_POLL_MS: undefined,
  RELAY_RETRY_CAP_MS: undefined,
  RELAY_RESEND_MAX: undefined,
  RELAY_LEADER_CHECK_MS: undefined,
  RELAY_RETENTION_INTERVAL_MS: 'RELAY_SWEEP_MS',
  RELAY_BATCH_SIZE: undefined,
  RELAY_BATCH_BYTES: undefined,
}

const retiredLine = (name: string) => {
  const instead = RETIRED[name]
  return `${name}: no longer read; ${instead ? `${instead} covers it` : 'its value is fixed'} (docs/configuration.md, "Retired variables")`
}

/** A configuration refused: `issues` has one line per bad variable, "<NAME>: <problem>". */
export class ConfigError extends RelayError {
  constructor(readonly issues: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n  ${issues.join('\n  ')}`)
  }
}

/** The variables' schemas of a process's schema (an object schema, or a pipe that starts with one). */
const entriesOf = (schema: v.GenericSchema): Record<string, v.GenericSchema> => {
  type Entries = { entries?: Record<string, v.GenericSchema> }
  const s = schema as Entries & { pipe?: readonly Entries[] }
  return s.entries ?? s.pipe?.[0]?.entries ?? {}
}

/** One line per variable: "<NAME>: <problem>; <problem>". */
const linesOf = (schema: v.GenericSchema, issues: readonly v.BaseIssue<unknown>[]): string[] => {
  const entries = entriesOf(schema)
  const byName = new Map<string, string[]>()
  for (const issue of issues) {
    const name = v.getDotPath(issue) ?? '(environment)'
    // A variable that is missing: valibot reports the key; the variable's own schema says what to set.
    const missing = issue.kind === 'schema' && issue.input === undefined
    const message = missing ? (entries[name] && v.safeParse(entries[name], undefined).issues?.[0]?.message) || 'required' : issue.message
    const list = byName.get(name) ?? []
    if (!list.includes(message)) list.push(message)
    byName.set(name, list)
  }
  return [...byName].map(([name, messages]) => `${name}: ${messages.join('; ')}`)
}

/**
 * Validates `env` against a process's schema and returns its complete settings (every default applied). An empty
 * variable counts as unset (docker-compose and CI often pass `VAR=` for "not configured").
 * @throws ConfigError naming every bad or retired variable at once
 */
export const parseEnv = <S extends v.GenericSchema>(schema: S, env: Readonly<Record<string, unknown>>): v.InferOutput<S> => {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''))
  const parsed = v.safeParse(schema, present)
  const retired = Object.keys(RETIRED)
    .filter((name) => name in present)
    .map(retiredLine)
  if (!parsed.success || retired.length) throw new ConfigError([...(parsed.success ? [] : linesOf(schema, parsed.issues)), ...retired])
  return parsed.output
}

/**
 * A port another process already holds, and the variable that moves ours (`PORT`, `RELAY_PORT`,
 * `EMBEDDED_PG_PORT`): a start failure a person can fix, so it prints as one line, never as a stack trace.
 */
export class PortInUseError extends Error {
  constructor(
    readonly variable: string,
    readonly port: number,
    host?: string,
  ) {
    super(
      `port ${port}${host ? ` on ${host}` : ''} is already in use (another edge-relay, or another program): stop that one, or set ${variable} to a free port${variable === 'EMBEDDED_PG_PORT' ? ' (unset, it picks one)' : ` (${variable}=0 picks one)`}`,
    )
    this.name = 'PortInUseError'
  }
}

/** `err` as a PortInUseError when it is a listen's EADDRINUSE, else unchanged. */
export const portInUse = (err: unknown, variable: string, port: number, host?: string): unknown =>
  (err as { code?: unknown } | undefined)?.code === 'EADDRINUSE' ? new PortInUseError(variable, port, host) : err

/** The lines to print for a failed start: one per bad variable for a ConfigError, else the error's message. */
export const startFailureLines = (err: unknown): string[] =>
  err instanceof ConfigError
    ? err.issues.map((line) => `invalid configuration: ${line}`)
    : [err instanceof Error ? err.message : String(err)]
