import { describe, expect, it } from 'vitest'
import { resume, type ResumeEffect, type ResumeState } from './resume.ts'
import type { SseMessage } from './sse-parse.ts'

const ev = (seq: number, topic = 'orders', data = '{"n": 1}'): SseMessage => ({ id: String(seq), event: topic, data })
const control = (event: string, payload: unknown): SseMessage => ({ event, data: JSON.stringify(payload) })
const marker = { topic: 'orders', bytes: 2_000_000, reason: 'event 5 is over 1048576 bytes' }
const snapshot = { tenant: 'acme', subscribers: 2, topics: { orders: 1, '*': 1 } }

/** Feeds `messages` in order; returns where it ends and every effect, in order. */
const run = (state: ResumeState, messages: SseMessage[]) =>
  messages.reduce<{ state: ResumeState; effects: ResumeEffect[] }>(
    (acc, m) => {
      const step = resume(acc.state, m)
      return { state: step.state, effects: [...acc.effects, ...step.effects] }
    },
    { state, effects: [] },
  )

const every = (lastSeq?: number): ResumeState => ({ lastSeq, detectGaps: true })
const listed = (lastSeq?: number): ResumeState => ({ lastSeq, detectGaps: false })
const event = (seq: number, topic = 'orders', data = '{"n": 1}'): ResumeEffect => ({ type: 'event', seq, topic, data })

const cases: { name: string; from: ResumeState; messages: SseMessage[]; lastSeq: number | undefined; effects: ResumeEffect[] }[] = [
  {
    name: 'new events pass through with their JSON text unchanged',
    from: every(),
    messages: [ev(1), ev(2, 'users', '{"name":"Ada"}')],
    lastSeq: 2,
    effects: [event(1), event(2, 'users', '{"name":"Ada"}')],
  },
  {
    name: 'a resend at or below lastSeq is dropped (duplicates across a reconnect)',
    from: every(),
    messages: [ev(1), ev(2), ev(2), ev(1), ev(3)],
    lastSeq: 3,
    effects: [event(1), event(2), event(3)],
  },
  {
    name: 'the `after` a stream starts from counts as seen',
    from: every(5),
    messages: [ev(4), ev(5), ev(6)],
    lastSeq: 6,
    effects: [event(6)],
  },
  {
    name: 'a jump is a gap when gaps are detected, reported before the event that revealed it',
    from: every(2),
    messages: [ev(5)],
    lastSeq: 5,
    effects: [{ type: 'gap', expected: 3, got: 5 }, event(5)],
  },
  {
    name: 'a jump is no gap when gaps are not detected (other topics lie between)',
    from: listed(2),
    messages: [ev(5), ev(9)],
    lastSeq: 9,
    effects: [event(5), event(9)],
  },
  {
    name: 'the first event is never a gap: there is nothing to compare it with',
    from: every(),
    messages: [ev(40)],
    lastSeq: 40,
    effects: [event(40)],
  },
  {
    name: 'a reset moves the resume point to its head; what follows the head is no gap',
    from: every(3),
    messages: [control('reset', { head: 40, first: 30 }), ev(41)],
    lastSeq: 41,
    effects: [{ type: 'reset', payload: { head: 40, first: 30 } }, event(41)],
  },
  {
    name: 'after a reset, a seq at or below its head is dropped',
    from: every(3),
    messages: [control('reset', { head: 40, first: null }), ev(35), ev(40), ev(41)],
    lastSeq: 41,
    effects: [{ type: 'reset', payload: { head: 40, first: null } }, event(41)],
  },
  {
    name: 'a reset to a lower head (a room that lost its memory) moves the resume point back',
    from: every(50),
    messages: [control('reset', { head: 10, first: 1 }), ev(11)],
    lastSeq: 11,
    effects: [{ type: 'reset', payload: { head: 10, first: 1 } }, event(11)],
  },
  {
    name: 'reauth asks for an immediate reconnect and leaves the resume point',
    from: every(7),
    messages: [control('reauth', { reason: 'token expired' })],
    lastSeq: 7,
    effects: [{ type: 'reconnect', reason: 'token expired' }],
  },
  {
    name: 'presence hands on the snapshot',
    from: every(7),
    messages: [control('presence', snapshot)],
    lastSeq: 7,
    effects: [{ type: 'presence', snapshot }],
  },
  {
    name: 'control events never move lastSeq by an id (EventSource repeats the last one on them)',
    from: every(7),
    messages: [{ ...control('reauth', { reason: 'token expired' }), id: '99' }, { ...control('presence', snapshot), id: '99' }, ev(8)],
    lastSeq: 8,
    effects: [{ type: 'reconnect', reason: 'token expired' }, { type: 'presence', snapshot }, event(8)],
  },
  {
    name: 'markers go to undeliverable with their seq, count as seen, and are never a gap',
    from: every(4),
    messages: [
      { id: '5', event: 'oversize', data: JSON.stringify(marker) },
      { id: '6', event: 'undeliverable', data: JSON.stringify(marker) },
      ev(7),
    ],
    lastSeq: 7,
    effects: [
      { type: 'undeliverable', seq: 5, event: 'oversize', marker },
      { type: 'undeliverable', seq: 6, event: 'undeliverable', marker },
      event(7),
    ],
  },
  {
    name: 'a marker resent across a reconnect is dropped like an event',
    from: every(5),
    messages: [{ id: '5', event: 'oversize', data: JSON.stringify(marker) }],
    lastSeq: 5,
    effects: [],
  },
  {
    name: 'a message with no id and no control name is ignored',
    from: every(5),
    messages: [
      { event: 'orders', data: '{}' },
      { event: 'message', data: 'hello' },
    ],
    lastSeq: 5,
    effects: [],
  },
]

describe('resume', () => {
  it.each(cases)('$name', ({ from, messages, lastSeq, effects }) => {
    const end = run(from, messages)
    expect(end.effects).toEqual(effects)
    expect(end.state).toEqual({ ...from, lastSeq })
  })

  it('never changes the state it is given', () => {
    const state = Object.freeze(every(1))
    expect(() => run(state, [ev(2), control('reset', { head: 9, first: 3 }), ev(12)])).not.toThrow()
    expect(state).toEqual(every(1))
  })
})

describe('resume: messages that break the protocol are ignored with a `malformed` effect, never thrown', () => {
  const bad = (event: string, data: string, id?: string): SseMessage => ({ ...(id !== undefined ? { id } : {}), event, data })
  const malformed = (event: string) => ({ type: 'malformed', event, problem: expect.any(String) as string })

  it.each([
    ['reset', 'not json'],
    ['reset', '{"first": 3}'],
    ['reset', '{"head": "40", "first": null}'],
    ['reset', '{"head": -1, "first": null}'],
    ['presence', '{"tenant": "acme"'],
    ['presence', '[1, 2]'],
  ])('%s with data %s: the resume point stays', (event, data) => {
    const step = resume(every(3), bad(event, data))
    expect(step.effects).toEqual([malformed(event)])
    expect(step.state).toEqual(every(3))
  })

  it('a reset that cannot be read still shows as a gap where gaps are detected', () => {
    const end = run(every(3), [bad('reset', '{'), ev(41)])
    expect(end.effects).toEqual([malformed('reset'), { type: 'gap', expected: 4, got: 41 }, event(41)])
  })

  it('a reauth that cannot be read still reconnects: the stream is over either way', () => {
    const step = resume(every(3), bad('reauth', 'expired'))
    expect(step.effects).toEqual([malformed('reauth'), { type: 'reconnect' }])
    expect(step.state).toEqual(every(3))
  })

  it('a marker that cannot be read still counts its seq, so the sequence stays gapless', () => {
    const end = run(every(4), [bad('oversize', '{"topic": 1}', '5'), ev(6)])
    expect(end.effects).toEqual([malformed('oversize'), event(6)])
    expect(end.state.lastSeq).toBe(6)
  })

  it.each(['', 'abc', '-3', '1.5', '9007199254740993'])('an id %j that is not a seq is ignored', (id) => {
    const step = resume(every(3), bad('orders', '{}', id))
    expect(step.effects).toEqual([malformed('orders')])
    expect(step.state).toEqual(every(3))
  })

  it('says what was wrong', () => {
    expect(resume(every(), bad('reset', 'nope')).effects[0]).toMatchObject({ problem: expect.stringMatching(/^data is not JSON/) })
    expect(resume(every(), bad('presence', '{"tenant": 1}')).effects[0]).toMatchObject({ problem: 'unexpected data {"tenant": 1}' })
  })
})
