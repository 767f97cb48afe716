/** Capped exponential backoff with jitter, in ms: attempt 0 → up to `baseMs`, doubling to at most `capMs`; `random` for tests. */
export const backoffMs = (attempt: number, baseMs = 100, capMs = 5_000, random = Math.random): number => {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** Sleeps `ms`, or less if `signal` aborts (relay loops and the Durable Object rooms' retries alike). */
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
