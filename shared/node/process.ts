import { pathToFileURL } from 'node:url'
import { startFailureLines } from '../env.ts'
import { log } from '../log.ts'

/** True in the module Node was asked to run (`node file`, `tsx file`), false when it is imported. */
export const isMain = (moduleUrl: string): boolean => Boolean(process.argv[1]) && moduleUrl === pathToFileURL(process.argv[1]!).href

/** EX_SOFTWARE (sysexits.h): an internal error; the supervisor restarts the process. */
const CRASH_EXIT_CODE = 70

/** "at fn (file:line:col)": where an error was thrown, from its stack. */
const firstFrame = (stack: string | undefined) => stack?.match(/^[ \t]+at .*$/m)?.[0].trim()

/**
 * An uncaught exception or unhandled rejection leaves the process in an unknown state (one seen in practice: the
 * postgres.js client throws "Cannot read properties of null (reading 'write')" from a timer when a connection dies
 * during a Postgres restart). Nothing here tries to recover or to shut down gracefully — a graceful stop waits on
 * connections and batches that may never settle, and a hung leader keeps its lock session, so no standby could take
 * over. One line says what happened, then the process exits at once: its sockets close, Postgres frees the leader
 * lock, a standby leads within one check, systemd restarts this one, and every relay catches up from the cursors.
 */
let crashed = false
const crash = (name: string, origin: string) => (err: unknown) => {
  if (crashed) return // a second error while exiting: the first one is the line that matters
  crashed = true
  const then = name === 'relay' ? 'systemd restarts it and a standby takes over' : 'its supervisor restarts it'
  try {
    log('error', `${name} crashed (${origin}); exiting with code ${CRASH_EXIT_CODE} so that ${then}`, {
      err: err instanceof Error ? err.message : String(err),
      at: err instanceof Error ? firstFrame(err.stack) : undefined,
    })
  } finally {
    process.exit(CRASH_EXIT_CODE)
  }
}

/**
 * How every Node process of ours (`relay`, `edge`, the two together in `serve`) lives and dies: a crash exits 70 at
 * once (above), a failed start exits 1 saying why (a plain line per bad variable or port in use), SIGINT/SIGTERM stop what `start`
 * started, then exit 0. `start` validates its configuration before it starts anything, so a bad variable costs no
 * half-started process.
 */
export const runProcess = (name: 'relay' | 'edge', start: () => Promise<{ stop(): Promise<void> }>) => {
  process.on('uncaughtException', crash(name, 'uncaught exception'))
  process.on('unhandledRejection', crash(name, 'unhandled rejection'))
  start().then(
    (running) => {
      let stopping = false
      const stop = async (signal: string) => {
        if (stopping) return
        stopping = true
        log('info', `${name} stopping`, { signal })
        await running.stop()
        log('info', `${name} stopped`)
        process.exit(0)
      }
      process.once('SIGINT', () => void stop('SIGINT'))
      process.once('SIGTERM', () => void stop('SIGTERM'))
    },
    (err: unknown) => {
      // What a person can fix (a bad variable, a port in use): plain lines first, one per problem, as the person at
      // the terminal reads them; then one JSON log line with the same problems, for whatever collects the logs.
      const problems = startFailureLines(err)
      for (const line of problems) process.stderr.write(`${name}: ${line}\n`)
      log('error', `${name} failed to start`, { problems })
      process.exit(1)
    },
  )
}
