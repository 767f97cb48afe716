import { createSseParser, type SseMessage } from '../../shared/sse-parse.ts'

/** Reads an SSE stream (what a room's connect returns) in the background and records what arrives. */
export const collect = (stream: ReadableStream<Uint8Array>) => {
  const messages: SseMessage[] = []
  let ended = false
  const feed = createSseParser((m) => messages.push(m))
  const reader = stream.getReader()
  const done = (async () => {
    const decoder = new TextDecoder()
    for (let r = await reader.read(); !r.done; r = await reader.read()) feed(decoder.decode(r.value, { stream: true }))
  })()
    .catch(() => {})
    .finally(() => (ended = true))
  const until = async (what: string, pred: () => boolean) => {
    const deadline = Date.now() + 10_000
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(messages)}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  return {
    messages,
    seqs: () => messages.flatMap((m) => (m.id ? [Number(m.id)] : [])),
    until,
    ended: () => ended,
    /** Leaves, as a browser closing the page. */
    cancel: async () => {
      await reader.cancel().catch(() => {})
      await done
    },
  }
}
