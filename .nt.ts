import postgres from 'postgres'
import { fork } from 'node:child_process'
const url = 'postgres://postgres@127.0.0.1:5432/postgres'
if (process.argv[2] === 'writer') {
  const w = postgres(url, { max: 1 })
  await w`select 1`
  for (let i = 0; i < 600; i++) { await new Promise((r) => setTimeout(r, 10)); await w`select pg_notify('nt', ${String(process.hrtime.bigint())})` }
  await w.end(); process.exit(0)
}
const same: number[] = [], other: number[] = [], lat: number[] = []
let n = 0
const pool = postgres(url, { max: 1, onnotice: () => {} })
await pool`select 1`
let mine: any
mine = postgres(url, { max: 1, onnotice: () => {}, onnotify: async (_c: string, payload: string) => {
  const now = process.hrtime.bigint()
  lat.push(Number(now - BigInt(payload)) / 1000)
  const useSame = n++ % 2 === 0
  const t = performance.now()
  if (useSame) await mine`select 1 as x`; else await pool`select 1 as x`
  ;(useSame ? same : other).push((performance.now() - t) * 1000)
} } as any)
await mine`listen nt`
const child = fork(new URL(import.meta.url).pathname, ['writer'], { execArgv: ['--import', 'tsx'] })
await new Promise((r) => child.on('exit', r))
await new Promise((r) => setTimeout(r, 200))
const q = (xs: number[]) => { xs.sort((a, b) => a - b); return `p50 ${xs[xs.length >> 1]!.toFixed(0)} p90 ${xs[Math.floor(xs.length * 0.9)]!.toFixed(0)} µs (n=${xs.length})` }
console.log('notify latency', q(lat)); console.log('query on the LISTEN connection', q(same)); console.log('query on another connection', q(other))
await mine.end(); await pool.end()
