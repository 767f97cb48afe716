import { describe, expect, it } from 'vitest'
import { ChangeWindow, LATE_MS, RECENT_MS } from './poller.ts'

describe('ChangeWindow', () => {
  it('reads after the stamp it started from, and nudges each head move once', () => {
    const w = new ChangeWindow(100)
    expect(w.after(0)).toBe(100)
    expect(w.changed(1, [{ tenant: 'a', seq: 1, stamp: 101 }])).toEqual(['a'])
    // Read again within the window: the same head nudges nothing; a moved one does.
    expect(w.after(10)).toBe(100)
    expect(
      w.changed(11, [
        { tenant: 'a', seq: 1, stamp: 101 },
        { tenant: 'b', seq: 7, stamp: 102 },
      ]),
    ).toEqual(['b'])
    expect(w.changed(21, [{ tenant: 'a', seq: 2, stamp: 103 }])).toEqual(['a'])
  })

  it('keeps reading a stamp lower than one already seen (a late committer) until LATE_MS has passed', () => {
    const w = new ChangeWindow(0)
    w.after(0)
    // Stamp 5 committed first; stamp 4's transaction is still open.
    expect(w.changed(1, [{ tenant: 'fast', seq: 1, stamp: 5 }])).toEqual(['fast'])
    expect(w.after(LATE_MS / 2)).toBe(0) // still reads from before 4
    expect(
      w.changed(LATE_MS / 2 + 1, [
        { tenant: 'late', seq: 1, stamp: 4 },
        { tenant: 'fast', seq: 1, stamp: 5 },
      ]),
    ).toEqual(['late'])
    // A second after the first poll, its highest stamp becomes the floor, and the window forgets what is below it.
    expect(w.after(LATE_MS + 1)).toBe(5)
    expect(w.size).toBe(0)
  })

  it('moves its floor to the highest stamp of the last poll that ended LATE_MS ago or more', () => {
    const w = new ChangeWindow(0)
    w.changed(0, [{ tenant: 'a', seq: 1, stamp: 1 }])
    w.changed(100, [{ tenant: 'b', seq: 1, stamp: 2 }])
    w.changed(200, [])
    expect(w.after(LATE_MS + 150)).toBe(2)
    expect(w.after(LATE_MS + 250)).toBe(2) // the empty poll saw nothing higher
  })

  it('reads back RECENT_MS on an ordinary poll and LATE_MS on a deep one', () => {
    const w = new ChangeWindow(0)
    w.changed(0, [{ tenant: 'a', seq: 1, stamp: 1 }])
    w.changed(RECENT_MS / 2, [{ tenant: 'b', seq: 1, stamp: 2 }])
    w.changed(RECENT_MS * 2, [{ tenant: 'c', seq: 1, stamp: 3 }])
    const now = RECENT_MS * 2 + 10
    expect(w.after(now, RECENT_MS)).toBe(2) // polls that ended ≥ RECENT_MS ago saw up to 2
    expect(w.after(now, LATE_MS)).toBe(0) // none ended a second ago yet: from the start
    expect(w.size).toBe(3) // a deep poll may read them all again: each is remembered, so none is nudged twice
    expect(w.changed(now + 1, [{ tenant: 'a', seq: 1, stamp: 1 }])).toEqual([])
  })
})
