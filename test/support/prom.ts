/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y

/**
 * A strict parser for the Prometheus text format (version 0.0.4): throws on any line that is not a HELP/TYPE
 * comment or a well-formed sample, and on a sample whose family has no TYPE.
 */
export const parseProm = (text: string): Sample[] => {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line)
      if (!m) throw new Error(`line ${i + 1}: bad comment: ${line}`)
      if (m[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(m[3]!)) throw new Error(`line ${i + 1}: bad type ${m[3]}`)
        types.set(m[2]!, m[3]!)
      }
      continue
    }
    const m = SAMPLE.exec(line)
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`)
    const labels: Record<string, string> = {}
    if (m[2]) {
      LABEL.lastIndex = 0
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2])
        if (!l) throw new Error(`line ${i + 1}: bad labels: ${m[2]}`)
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
      }
    }
    // Values are Go floats: NaN and Inf in any case (prom-client writes "Nan", which Prometheus accepts).
    const raw = m[3]!
    const value = /^[+-]?inf(inity)?$/i.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : /^nan$/i.test(raw) ? NaN : Number(raw)
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`line ${i + 1}: bad value ${raw}`)
    const family = m[1]!.replace(/_(bucket|sum|count|total|created)$/, '')
    if (!types.has(m[1]!) && !types.has(family)) throw new Error(`line ${i + 1}: sample ${m[1]} has no # TYPE`)
    samples.push({ name: m[1]!, labels, value })
  }
  return samples
}

/** Sum of the samples named `name` whose labels include `match`. */
export const metricValue = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)

export const scrape = async (url: string) => {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url} answered ${res.status}`)
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? ''))
    throw new Error(`unexpected content-type ${res.headers.get('content-type')}`)
  return parseProm(await res.text())
}
