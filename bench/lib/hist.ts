/**
 * A log-bucketed latency histogram (2 % buckets from 1 µs to ~1 h): cheap to fill in client processes, mergeable
 * across them, and precise enough for p50/p99 and for drawing the distribution.
 */
const BASE = Math.log(1.02)
const BUCKETS = 1200

export type Hist = number[]

export const newHist = (): Hist => new Array<number>(BUCKETS).fill(0)

/** Adds one latency in milliseconds. */
export const record = (h: Hist, ms: number) => {
  const us = ms * 1000
  const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / BASE))
  h[i]!++
}

export const merge = (into: Hist, from: Hist) => {
  for (let i = 0; i < BUCKETS; i++) into[i]! += from[i] ?? 0
}

export const count = (h: Hist) => h.reduce((a, b) => a + b, 0)

/** Bucket midpoint in ms. */
const value = (i: number) => Math.exp((i + 0.5) * BASE) / 1000

/** The latency (ms) at quantile q in [0, 1]; NaN for an empty histogram. */
export const quantile = (h: Hist, q: number): number => {
  const n = count(h)
  if (n === 0) return NaN
  const target = Math.max(1, Math.ceil(q * n))
  let seen = 0
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i]!
    if (seen >= target) return value(i)
  }
  return value(BUCKETS - 1)
}

/** Points (quantile, ms) for a chart, on quantiles that spread the tail out. */
export const curve = (h: Hist): [number, number][] =>
  [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999].map((q) => [
    q,
    quantile(h, q),
  ])

/** Monotonic clock shared by every process on the machine (CLOCK_MONOTONIC), in ms. */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6

const STAMP = /"t": ?([0-9.]+)/

/** The writer's send time (`"t":` in the event's JSON text, ms on nowMs's clock), read without parsing the event. */
export const stampOf = (text: string): number | undefined => {
  const t = STAMP.exec(text)?.[1]
  return t === undefined ? undefined : Number(t)
}
