/**
 * Injects a crash into a process for tests, with no hook in production code: load it with
 * `NODE_OPTIONS=--import=<this file>`. CRASH_AFTER_MS after start it throws CRASH_MESSAGE from a timer, where
 * nothing can catch it — as a library's timer does when it throws (an uncaught exception). CRASH_KIND=rejection
 * rejects a promise nobody handles instead.
 */
const ms = Number(process.env.CRASH_AFTER_MS)
if (!Number.isFinite(ms) || ms < 0) throw new Error('crash-after.mjs: set CRASH_AFTER_MS to a number of milliseconds')
const message = process.env.CRASH_MESSAGE || 'injected crash'

// unref: a process that ends by itself before the timer fires is not kept alive by it.
setTimeout(() => {
  if (process.env.CRASH_KIND === 'rejection') void Promise.reject(new Error(message))
  else throw new TypeError(message)
}, ms).unref()
