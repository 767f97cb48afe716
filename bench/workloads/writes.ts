import type { Ctx } from '../lib/context.ts'
import { publishers } from '../lib/publishers.ts'
import { LATENCY, latencyRun, type LatencyResult } from './latency.ts'

const WRITERS = [1, 4, 8, 16] as const
/** Writers on the one hot tenant: they serialise on its head row whatever the mode. */
const HOT_WRITERS = 8

type Rates = Record<`w${(typeof WRITERS)[number]}`, number>

const brief = (r: LatencyResult, rate: number) => ({ rate, p50: r.p50, p95: r.p95, p99: r.p99, delivered: r.delivered })

/**
 * The write side (`writes` in the JSON):
 * - `notify`, `poll`: publishing transactions committed per second at 1, 4, 8 and 16 saturating writers, each on
 *   its own tenant, with NOTIFY (the default) and with relay.notify = 'off' (poll mode), no relay running: what
 *   the database can commit, and what NOTIFY's commit-time lock takes from it.
 * - `hot_tenant`: the same for 8 writers on one tenant, in both modes.
 * - `poll_latency`: commit → client in poll mode (`npm run serve` shape), at 50 % and 90 % of poll mode's
 *   8-writer ceiling, spread over 16 tenants with one client each; and the `light` workload in poll mode.
 */
export const writes = async (ctx: Ctx) => {
  const seconds = ctx.opts.quick ? 3 : 10
  const rate = async (clients: number, tenants: 'per-client' | 'one', notify: boolean) => {
    await ctx.db.reset()
    const r = await publishers({ url: ctx.db.url, clients, seconds, tenants, notify })
    const perS = Math.round(r.events / seconds)
    ctx.progress(
      `writes · ${notify ? 'notify' : 'poll'} · ${clients} writers${tenants === 'one' ? ' on one tenant' : ''}: ${perS} commits/s`,
    )
    return { perS, tool: r.tool }
  }
  const notify = {} as Rates
  const poll = {} as Rates
  let tool = ''
  for (const w of WRITERS) {
    notify[`w${w}`] = (await rate(w, 'per-client', true)).perS
    const p = await rate(w, 'per-client', false)
    poll[`w${w}`] = p.perS
    tool = p.tool
  }
  const hot_tenant = {
    writers: HOT_WRITERS,
    notify: (await rate(HOT_WRITERS, 'one', true)).perS,
    poll: (await rate(HOT_WRITERS, 'one', false)).perS,
  }

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
  return { tool, seconds, notify, poll, hot_tenant, poll_latency, ratio_w8: Number((poll.w8 / notify.w8).toFixed(2)) }
}
