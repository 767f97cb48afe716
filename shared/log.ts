/** Structured JSON logs, one line each, to stderr-equivalent console.error (stdout stays free for program output). */
export type Level = 'debug' | 'info' | 'warn' | 'error'
export type Log = (level: Level, msg: string, fields?: Record<string, unknown>) => void

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }
let threshold: Level = 'info'

/** Lines below `level` are dropped from here on: each process sets its LOG_LEVEL once, at start. */
export const setLogLevel = (level: Level) => {
  threshold = level
}

/** Whether a line at `level` is written (for logs that do not go through `log`, as on Workers). */
export const logs = (level: Level): boolean => order[level] >= order[threshold]

export const log: Log = (level, msg, fields) => {
  if (!logs(level)) return
  console.error(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }))
}
