import { sleep } from './backoff.ts'

/**
 * Runs `fn` every `ms` (first run after one interval), never two at once: a slow run delays the next instead of
 * piling up. Errors go to `onError` and the loop goes on.
 */
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
