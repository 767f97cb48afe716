import { loadEdgeEnv } from '../edge/config.ts'
import { startNodeEdge, type NodeEdge } from '../edge/platform/node.ts'
import { ConfigError } from '../shared/env.ts'
import { log } from '../shared/log.ts'
import { loadRelayConfig } from './config.ts'
import { startRelay } from './relay.ts'
import { startRelayServer } from './server.ts'

/** EX_SOFTWARE (sysexits.h): an internal error; the supervisor restarts the process. */
const CRASH_EXIT_CODE = 70

/** "at fn (file:line:col)": where an error was thrown, from its stack. */
const firstFrame = (stack: string | undefined) => stack?.split('\n').find((line) => /^\s+at /.test(line))?.trim()

/**
 * An uncaught exception or unhandled rejection leaves the process in an unknown state (one seen in practice: the
 * postgres.js client throws "Cannot read properties of null (reading 'write')" from a timer when a connection dies
 * during a Postgres restart). Nothing here tries to recover or to shut down gracefully — a graceful stop waits on
 * connections and batches that may never settle, and a hung leader keeps its lock session, so no standby could take
 * over. One line says what happened, then the process exits at once: its sockets close, Postgres frees the leader
 * lock, a standby leads within one check, systemd restarts this one, and every relay catches up from the cursors.
 */
let crashed = false
const crash = (origin: string) => (err: unknown) => {
  if (crashed) return // a second error while exiting: the first one is the line that matters
  crashed = true
  try {
    log('error', `relay crashed (${origin}); exiting with code ${CRASH_EXIT_CODE} so that systemd restarts it and a standby takes over`, {
      err: err instanceof Error ? err.message : String(err),
      at: err instanceof Error ? firstFrame(err.stack) : undefined,
    })
  } finally {
    process.exit(CRASH_EXIT_CODE)
  }
}
process.on('uncaughtException', crash('uncaught exception'))
process.on('unhandledRejection', crash('unhandled rejection'))

/**
 * `npm run relay`: the relay, posting to the edges in EDGE_URL. `npm run serve` (`--edge`): the relay and a Node edge
 * in one process — the single-VM deployment on Node: batches reach the rooms by a function call (relay.ts,
 * LocalEdge), and EDGE_URL, if set, lists further edges. Wiring and signals; the only relay file that reads process.*.
 */
const main = async () => {
  const withEdge = process.argv.includes('--edge')
  // Both configurations are checked before anything starts, and every bad variable of either is named at once.
  const problems: string[] = []
  const checked = <T>(load: () => T): T | undefined => {
    try {
      return load()
    } catch (err) {
      problems.push(...(err instanceof ConfigError ? err.issues : [err instanceof Error ? err.message : String(err)]))
    }
  }
  const config = checked(() => loadRelayConfig(process.env, { localEdge: withEdge }))
  const edgeEnv = withEdge ? checked(() => loadEdgeEnv(process.env)) : undefined
  // Shared variables (RELAY_SECRET) would be named by both: list each problem once.
  if (!config || problems.length) throw new ConfigError([...new Set(problems)])
  const edge: NodeEdge | undefined = edgeEnv && (await startNodeEdge(edgeEnv, process.env.HOST ?? '0.0.0.0'))
  const relay = await startRelay({ config, log, ...(edge ? { local: edge } : {}) })
  const server = await startRelayServer(relay, config.RELAY_PORT, config.RELAY_HOST)
  log('info', 'relay started', { edges: config.EDGE_URL, ...(edge ? { edge: edge.url } : {}), port: server.port })
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    log('info', 'relay stopping', { signal })
    await relay.stop() // finishes the batches in flight (into the local edge too) before the edge closes
    await server.close()
    await edge?.close()
    log('info', 'relay stopped')
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}

main().catch((err) => {
  log('error', 'relay failed', { err: err instanceof Error ? err.message : String(err) })
  process.exit(1)
})
