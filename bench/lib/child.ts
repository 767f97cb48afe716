/**
 * The child side of lib/proc.ts: announce readiness, answer commands, and exit by ourselves when the parent goes
 * away or after a hard lifetime (a benchmark never leaves processes behind).
 */
export const serveChild = (
  handlers: Record<string, (msg: Record<string, unknown>) => unknown>,
  onExit: () => Promise<void> | void = () => {},
) => {
  const exit = async () => {
    try {
      await onExit()
    } finally {
      process.exit(0)
    }
  }
  process.on('disconnect', () => void exit())
  setTimeout(() => void exit(), Number(process.env.BENCH_CHILD_LIFETIME_MS ?? 20 * 60_000)).unref()
  process.on('message', async (m: { id?: number; cmd: string }) => {
    if (m.cmd === 'exit') return void exit()
    if (m.cmd === 'cpu') {
      const u = process.cpuUsage()
      return void process.send!({ reply: m.id, cpuMs: (u.user + u.system) / 1000 })
    }
    try {
      const out = (await handlers[m.cmd]!(m as Record<string, unknown>)) ?? {}
      process.send!({ reply: m.id, ...(out as object) })
    } catch (err) {
      process.send!({ reply: m.id, error: String((err as Error)?.stack ?? err) })
    }
  })
  return { ready: (info: Record<string, unknown> = {}) => process.send!({ ready: info }) }
}

/** The relay's log in a bench child: errors only, to stderr. */
export const quietLog = (level: string, msg: string, fields?: Record<string, unknown>) => {
  if (level === 'error') console.error('relay:', msg, fields ?? '')
}
