/** What one subscriber got for one window of committed events. */
export interface Tally {
  expected: number
  delivered: number
  lost: number
  duplicated: number
  outOfOrder: number
  /** Events of another tenant or topic (isolation broken). */
  foreign: number
  resets: number
}

/**
 * Compares what a subscriber received (seqs in arrival order, and where resets arrived) with the committed seqs of
 * its tenant and topics in (lo, hi]. Exactly once, in order — except that a `reset` excuses the events between the
 * last seq before it and the first seq after it (the client was told to refetch; the tail after it must still be
 * complete).
 */
export const tally = (
  received: readonly number[],
  resetsAt: readonly number[],
  expected: readonly number[],
  lo: number,
  hi: number,
): Tally => {
  const inWindow = (s: number) => s > lo && s <= hi
  const want = expected.filter(inWindow)
  const wanted = new Set(want)
  const excused: [number, number][] = resetsAt.map((k) => [received[k - 1] ?? 0, received[k] ?? Infinity])
  const got = new Set<number>()
  let duplicated = 0
  let outOfOrder = 0
  let foreign = 0
  let prev = -Infinity
  for (const s of received) {
    if (!inWindow(s)) continue
    if (!wanted.has(s)) foreign++
    if (got.has(s)) duplicated++
    else if (s < prev) outOfOrder++
    got.add(s)
    prev = Math.max(prev, s)
  }
  const lost = want.filter((s) => !got.has(s) && !excused.some(([a, b]) => s > a && s < b)).length
  return {
    expected: want.length,
    delivered: [...got].filter((s) => wanted.has(s)).length,
    lost,
    duplicated,
    outOfOrder,
    foreign,
    resets: resetsAt.filter((k) => (received[k] !== undefined ? inWindow(received[k]!) : true)).length,
  }
}

export const sumTallies = (ts: Tally[]): Tally =>
  ts.reduce(
    (a, t) => ({
      expected: a.expected + t.expected,
      delivered: a.delivered + t.delivered,
      lost: a.lost + t.lost,
      duplicated: a.duplicated + t.duplicated,
      outOfOrder: a.outOfOrder + t.outOfOrder,
      foreign: a.foreign + t.foreign,
      resets: a.resets + t.resets,
    }),
    { expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, foreign: 0, resets: 0 },
  )

export interface Row extends Tally {
  fault: string
  committed: number
  subscribers: number
  recoverMs: number
  notes: string
}

/** The chaos table, as Markdown. */
export const table = (rows: Row[]): string => {
  const head = [
    'fault',
    'events committed',
    'subscribers',
    'deliveries expected',
    'delivered',
    'lost',
    'duplicated',
    'out of order',
    'resets',
    'time to recover',
    'notes',
  ]
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [
    line(head),
    line(head.map(() => '---')),
    ...rows.map((r) =>
      line([
        r.fault,
        r.committed,
        r.subscribers,
        r.expected,
        r.delivered,
        r.lost,
        r.duplicated,
        r.outOfOrder + r.foreign,
        r.resets,
        `${(r.recoverMs / 1000).toFixed(2)} s`,
        r.notes,
      ]),
    ),
  ].join('\n')
}

/** The whole report, as Markdown: what ran, the table, the totals. */
export const report = (rows: Row[], about: string[]): string => {
  const total = sumTallies(rows)
  return [
    '# Chaos suite',
    '',
    `Run at ${new Date().toISOString()}: ${about.join('; ')}. "out of order" includes events of a wrong tenant or topic.`,
    '',
    table(rows),
    '',
    `Total: ${rows.reduce((n, r) => n + r.committed, 0)} events committed, ${total.delivered}/${total.expected} deliveries, ` +
      `${total.lost} lost, ${total.duplicated} duplicated, ${total.outOfOrder + total.foreign} out of order.`,
    '',
  ].join('\n')
}
