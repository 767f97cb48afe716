/** Timing, pure or nearly: backoff, timeouts, sleeps and a loop that never overlaps itself. */

/** Capped exponential backoff with jitter, in ms: attempt 0 → up to `baseMs`, doubling to at most `capMs`; `random` for tests. */
export const backoffMs = (attempt: number, baseMs = 100, capMs = 5_000, random = Math.random): number => {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

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

/** Sleeps `ms`, or less if `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
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
