import { curve, type Hist } from './hist.ts'

/**
 * An SVG of latency distributions, ours vs baseline, one panel per workload: x = quantile on a tail-stretching
 * scale (−log10(1−q)), y = latency on a log scale.
 */
export const latencyChart = (panels: { title: string; series: { label: string; color: string; hist: Hist }[] }[]): string => {
  const W = 360
  const legend = Math.max(...panels.map((p) => p.series.length)) // one legend line per series, above the plot
  const m = { l: 52, r: 12, t: 30 + legend * 13, b: 40 }
  const H = 238 + m.t
  const pw = W - m.l - m.r
  const ph = H - m.t - m.b
  const all = panels.flatMap((p) => p.series.flatMap((s) => curve(s.hist).map(([, v]) => v))).filter((v) => Number.isFinite(v) && v > 0)
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all, 1)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 10)))
  const x = (q: number) => m.l + (-Math.log10(1 - q) / 3) * pw
  const y = (v: number) => m.t + ph - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph
  const out: string[] = []
  panels.forEach((p, i) => {
    const g: string[] = [
      `<g transform="translate(${i * W},0)">`,
      `<text x="${m.l + pw / 2}" y="16" text-anchor="middle" font-weight="bold">${p.title}</text>`,
    ]
    for (let d = lo; d <= hi; d *= 10) {
      g.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`)
      g.push(`<text x="${m.l - 4}" y="${y(d) + 4}" text-anchor="end" font-size="10">${d >= 1000 ? `${d / 1000} s` : `${d} ms`}</text>`)
    }
    for (const [q, label] of [
      [0, 'p0'],
      [0.5, 'p50'],
      [0.9, 'p90'],
      [0.99, 'p99'],
      [0.999, 'p99.9'],
    ] as const) {
      g.push(`<line x1="${x(q)}" x2="${x(q)}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`)
      g.push(`<text x="${x(q)}" y="${m.t + ph + 14}" text-anchor="middle" font-size="10">${label}</text>`)
    }
    g.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`)
    p.series.forEach((s, k) => {
      const pts = curve(s.hist).filter(([, v]) => Number.isFinite(v) && v > 0)
      if (pts.length)
        g.push(
          `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map(([q, v]) => `${x(q).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`,
        )
      g.push(`<text x="${m.l}" y="${30 + k * 13}" font-size="10.5" fill="${s.color}">— ${s.label}</text>`)
    })
    g.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle" font-size="10">quantile (commit → client parse)</text>`, '</g>')
    out.push(g.join('\n'))
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${out.join('\n')}
</svg>
`
}
