import { describe, expect, it } from 'vitest'
import { tally } from './ledger.ts'

describe('tally', () => {
  it('counts lost, duplicated, out of order and foreign seqs in the window', () => {
    expect(tally([1, 2, 3, 4], [], [1, 2, 3, 4], 0, 4)).toMatchObject({ expected: 4, delivered: 4, lost: 0, duplicated: 0, outOfOrder: 0 })
    expect(tally([1, 3, 2, 3, 9], [], [1, 2, 3, 4], 0, 4)).toMatchObject({
      delivered: 3,
      lost: 1,
      duplicated: 1,
      outOfOrder: 1,
      foreign: 0,
    })
    expect(tally([2, 5, 6], [], [2, 6], 0, 10)).toMatchObject({ lost: 0, foreign: 1 })
    expect(tally([1, 2, 3, 4, 5], [], [1, 2, 3, 4, 5], 2, 4)).toMatchObject({ expected: 2, delivered: 2 })
  })
  it('a reset excuses the gap before the first seq after it, not the tail', () => {
    expect(tally([1, 2, 7, 8, 9], [2], [1, 2, 3, 4, 5, 6, 7, 8, 9], 0, 9)).toMatchObject({ lost: 0, resets: 1 })
    expect(tally([1, 2, 7, 9], [2], [1, 2, 3, 4, 5, 6, 7, 8, 9], 0, 9)).toMatchObject({ lost: 1 })
    expect(tally([1, 2, 7], [], [1, 2, 3, 7], 0, 9)).toMatchObject({ lost: 1, resets: 0 })
  })
})
