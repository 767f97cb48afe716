/** RSS after a full GC when the process runs with --expose-gc (children measured for memory do). */
export const memory = async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3 && gc; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 50))
  }
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}
