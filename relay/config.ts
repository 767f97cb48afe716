import * as v from 'valibot'
import { DEFAULTS } from '../shared/protocol.ts'
import { intVar, parseEnv, secretVar } from '../shared/env.ts'

const url = (name: string, protocols: RegExp) =>
  v.pipe(v.string(), v.trim(), v.url(`${name} must be a URL`), v.regex(protocols, `${name} has the wrong scheme`))

const RelayEnv = v.object({
  DATABASE_URL: url('DATABASE_URL', /^postgres(?:ql)?:\/\//),
  /** One edge URL, or several separated by commas (each gets its own cursors). */
  EDGE_URL: v.pipe(
    v.string('EDGE_URL is required (the edge base URL, e.g. http://127.0.0.1:8787)'),
    v.transform((s) => s.split(',').map((u) => u.trim().replace(/\/+$/, '')).filter(Boolean)),
    v.minLength(1, 'EDGE_URL lists no URL'),
    v.check((us) => us.every((u) => /^https?:\/\/[^\s]+$/.test(u)), 'EDGE_URL entries must be http(s) URLs'),
  ),
  RELAY_SECRET: secretVar('RELAY_SECRET'),
  RELAY_PORT: intVar(0, 65535, 8788),
  RELAY_HOST: v.optional(v.string(), '127.0.0.1'),
  RELAY_BATCH_SIZE: intVar(1, 10_000, DEFAULTS.batchSize),
  /** Safety-net sweep: catches tenants whose head moved without a nudge. */
  RELAY_SWEEP_MS: intVar(100, 3_600_000, 5_000),
  /** Longest wait between retries to an unreachable edge. */
  RELAY_RETRY_CAP_MS: intVar(10, 600_000, 5_000),
  /** When a room reports it lost events, resend at most this many (older ones: the room starts later). */
  RELAY_RESEND_MAX: intVar(1, 10_000_000, DEFAULTS.historyLimit),
})
export type RelayConfig = v.InferOutput<typeof RelayEnv>

export const loadRelayConfig = (env: Record<string, string | undefined>): RelayConfig => parseEnv(RelayEnv, env)
