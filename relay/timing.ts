/** Timing, pure or nearly: timeouts and a loop that never overlaps itself (backoff and sleep are shared/backoff.ts: the edge uses them too). */
import { sleep } from '../shared/backoff.ts'

/** Rejects if `p` has not settled within `ms`; the timer never holds the process open. */
export const withTimeout = <T>(p: PromiseLike<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)
    timer.unref()
    Promise.resolve(p).then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e)),
    )
  })

/** Runs `fn` every `ms` (first after one interval unless `immediate`), never two at once. Errors go to `onError`; it goes on. */
export const every = (ms: number, fn: () => Promise<void>, onError: (err: unknown) => void, { immediate = false } = {}) => {
  const abort = new AbortController()
  const done = (async () => {
    for (let first = true; !abort.signal.aborted; first = false) {
      if (!(first && immediate)) await sleep(ms, abort.signal)
      if (abort.signal.aborted) return
      await fn().catch(onError)
    }
  })()
  return {
    /** Stops the loop; resolves once a run in progress has finished. */
    stop: async () => {
      abort.abort()
      await done
    },
  }
}
