/** Structured JSON logs, one line each, to stderr-equivalent console.error (stdout stays free for program output). */
export type Level = 'debug' | 'info' | 'warn' | 'error'
export type Log = (level: Level, msg: string, fields?: Record<string, unknown>) => void

const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }
let threshold: Level = 'info'

export const setLogLevel = (level: Level) => {
  threshold = level
}

export const log: Log = (level, msg, fields) => {
  if (order[level] < order[threshold]) return
  console.error(JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }))
}
