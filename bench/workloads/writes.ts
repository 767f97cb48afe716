import { type Ctx, median } from '../lib/context.ts'
import { publishers } from '../lib/publishers.ts'
import { LATENCY, latencyRun, type LatencyResult } from './latency.ts'

const WRITERS = [1, 4, 8, 16] as const
/** Writers on the one hot tenant: they serialise on its head row whatever the mode. */
const HOT_WRITERS = 8

type Key = `w${(typeof WRITERS)[number]}`

const brief = (r: LatencyResult, rate: number) => ({ rate, p50: r.p50, p95: r.p95, p99: r.p99, delivered: r.delivered })

/**
 * The write side (`writes` in the JSON):
 * - `notify`, `poll`: publishing transactions committed per second at 1, 4, 8 and 16 saturating writers, each on
 *   its own tenant, with NOTIFY (the default) and with relay.notify = 'off' (poll mode), no relay running: what
 *   the database can commit, and what NOTIFY's commit-time lock takes from it.
 * - `hot_tenant`: the same for 8 writers on one tenant, in both modes.
 * - `poll_latency`: commit → client in poll mode (`npm run serve` shape), at 50 % and 90 % of poll mode's
 *   8-writer ceiling, spread over 16 tenants with one client each; and the `light` workload in poll mode.
 * Each figure is the median of `--repeat` runs, notify and poll alternating: a shared disk's fsync rate drifts by
 * several times within minutes, and alternating keeps the drift out of the ratio. `runs` keeps every sample.
 */
export const writes = async (ctx: Ctx) => {
  const seconds = ctx.opts.quick ? 3 : 10
  let tool = ''
  const once = async (clients: number, tenants: 'per-client' | 'one', notify: boolean) => {
    await ctx.db.reset()
    const r = await publishers({ url: ctx.db.url, clients, seconds, tenants, notify })
    tool = r.tool
    return Math.round(r.events / seconds)
  }
  const pair = async (clients: number, tenants: 'per-client' | 'one') => {
    const notify: number[] = []
    const poll: number[] = []
    for (let r = 0; r < ctx.opts.repeat; r++) {
      notify.push(await once(clients, tenants, true))
      poll.push(await once(clients, tenants, false))
    }
    const m = { notify: median(notify)!, poll: median(poll)! }
    ctx.progress(
      `writes · ${clients} writers${tenants === 'one' ? ' on one tenant' : ''}: notify ${m.notify} · poll ${m.poll} commits/s (runs: notify ${notify.join(', ')} · poll ${poll.join(', ')})`,
    )
    return { ...m, runs: { notify, poll } }
  }
  const notify = {} as Record<Key, number>
  const poll = {} as Record<Key, number>
  const runs = {} as Record<Key, { notify: number[]; poll: number[] }>
  for (const w of WRITERS) {
    const p = await pair(w, 'per-client')
    notify[`w${w}`] = p.notify
    poll[`w${w}`] = p.poll
    runs[`w${w}`] = p.runs
  }
  const hot = await pair(HOT_WRITERS, 'one')
  const hot_tenant = { writers: HOT_WRITERS, notify: hot.notify, poll: hot.poll, runs: hot.runs }

  const ceiling = poll.w8
  const at = async (share: number) => {
    const r = Math.round(ceiling * share)
    const spec = { name: `poll${share * 100}`, tenants: 16, perTenant: 1, rate: r }
    return brief(await latencyRun(ctx, spec, 'ours', 'poll'), r)
  }
  const light = LATENCY.find((s) => s.name === 'light')!
  const poll_latency = {
    ceiling,
    at50: await at(0.5),
    at90: await at(0.9),
    light: brief(await latencyRun(ctx, light, 'ours', 'poll'), light.rate),
  }
  const ratio_w8 = Number((poll.w8 / notify.w8).toFixed(2))
  return { tool, seconds, repeat: ctx.opts.repeat, notify, poll, ratio_w8, hot_tenant, poll_latency, runs }
}
