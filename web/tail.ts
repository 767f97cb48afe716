/**
 * The live-tail page (development): `npm start` serves it and prints its URL with a token in the fragment (which
 * browsers never send to a server). It dogfoods the browser client in shared/client.ts.
 */
import { connect, type RelayClient, type RelayEvent, type Status } from '../shared/client.ts'
import { TOPIC_GRANT_PATTERN } from '../shared/protocol.ts'
import { grantsAllow } from '../shared/topics.ts'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const params = new URLSearchParams(location.search)

/** Rows kept on screen (`?max=`, default 500), and events held while paused: the page never grows without bound. */
const MAX_ROWS = Math.min(Math.max(Number(params.get('max')) || 500, 1), 10_000)
const MAX_PENDING = 10 * MAX_ROWS
const tenant = params.get('tenant') ?? 'demo'
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? ''
const from = params.get('from')

const list = $<HTMLOListElement>('events')
const empty = $('empty')
const filterInput = $<HTMLInputElement>('filter')
const pauseButton = $<HTMLButtonElement>('pause')
const pendingText = $('pending')
const notice = $('notice')
let received = 0
let paused = false
let pending: Received[] = []
let droppedWhilePaused = 0

$('tenant').textContent = tenant
for (const el of document.querySelectorAll('.tenant-name')) el.textContent = tenant

const hue = (topic: string) => {
  let h = 0
  for (const ch of topic) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return h % 360
}

/** Pretty JSON with light highlighting, built from text nodes (event data is never parsed as HTML). */
const jsonNode = (data: unknown): HTMLPreElement => {
  const pre = document.createElement('pre')
  pre.className = 'json'
  // Short values on one line, like a log; longer ones indented. (Newlines inside JSON strings are escaped, so
  // every newline in the output is layout and may be folded.)
  const oneLine = (JSON.stringify(data, null, 1) ?? 'undefined').replace(/\n */g, ' ')
  const text = oneLine.length <= 100 ? oneLine : JSON.stringify(data, null, 2)
  const token = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g
  let at = 0
  for (const m of text.matchAll(token)) {
    pre.append(text.slice(at, m.index))
    const span = document.createElement('span')
    span.className = m[1] ? (m[2] ? 'j-key' : 'j-str') : m[3] ? 'j-lit' : 'j-num'
    span.textContent = m[1] ?? m[0]
    pre.append(span)
    if (m[2]) pre.append(m[2])
    at = m.index + m[0].length
  }
  pre.append(text.slice(at))
  return pre
}

/**
 * `orders, users*` → a predicate, read as the edge reads a token's grants; empty = everything. A part that is not
 * a topic or `prefix*` (`orders users`, `a*b`) could match nothing: the filter is refused with the parts named,
 * rather than silently emptying the list.
 */
const topicFilter = (raw: string): ((topic: string) => boolean) | { invalid: string[] } => {
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const invalid = parts.filter((p) => !TOPIC_GRANT_PATTERN.test(p))
  if (invalid.length) return { invalid }
  return (topic) => grantsAllow(parts.length ? parts : undefined, topic)
}
let accepts = topicFilter('') as (topic: string) => boolean

const time = (d: Date) => `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`

/**
 * An event as received, with when it arrived and whether it was replayed. The SSE frame carries no commit time (its
 * format is public: adding one would be a contract change), so the time shown is the arrival time; an event the
 * stream replayed after a (re)connection arrives in a burst, and is marked "replayed" so that a row of identical
 * arrival times reads as what it is.
 */
type Received = RelayEvent & { at: Date; replayed: boolean }

const render = (e: Received) => {
  const li = document.createElement('li')
  li.className = 'event fresh'
  li.dataset.seq = String(e.seq)
  li.dataset.topic = e.topic
  li.style.setProperty('--hue', String(hue(e.topic)))
  const meta = document.createElement('div')
  meta.className = 'meta'
  const seq = Object.assign(document.createElement('span'), { className: 'seq', textContent: `#${e.seq}` })
  const topic = Object.assign(document.createElement('span'), { className: 'topic', textContent: e.topic })
  meta.append(seq, topic)
  if (e.replayed) {
    li.dataset.replayed = ''
    const title = 'committed before this connection opened: replayed from the edge’s history (the time is its arrival)'
    meta.append(Object.assign(document.createElement('span'), { className: 'replayed', textContent: 'replayed', title }))
  }
  const when = Object.assign(document.createElement('time'), { dateTime: e.at.toISOString(), textContent: time(e.at), title: 'received' })
  meta.append(when)
  li.append(meta, jsonNode(e.data))
  li.hidden = !accepts(e.topic)
  list.prepend(li)
  while (list.childElementCount > MAX_ROWS) list.lastElementChild!.remove()
  empty.hidden = true
}

const showPending = () => {
  const dropped = droppedWhilePaused ? ` (${droppedWhilePaused} older dropped)` : ''
  pendingText.textContent = paused ? `${pending.length} new while paused${dropped}` : ''
  pauseButton.textContent = paused ? `Resume${pending.length ? ` (${pending.length})` : ''}` : 'Pause'
}

/** Events up to this seq were committed before the current connection opened: they arrive as a replay. */
let replayThrough = 0

const onEvent = (e: RelayEvent) => {
  const got: Received = { ...e, at: new Date(), replayed: e.seq <= replayThrough }
  received++
  $('count').textContent = received.toLocaleString()
  $('last-seq').textContent = String(e.seq)
  if (paused) {
    pending.push(got)
    if (pending.length > MAX_PENDING) pending.shift(), droppedWhilePaused++
    return showPending()
  }
  render(got)
}

const setStatus = (s: Status) => {
  const el = $('status')
  el.dataset.status = s
  $('status-text').textContent = s
  document.title = `${s === 'live' ? '●' : '○'} ${tenant} · edge-relay live tail`
}

const say = (text: string) => {
  notice.textContent = text
  notice.hidden = false
}

const filterError = $('filter-error')
filterInput.addEventListener('input', () => {
  const next = topicFilter(filterInput.value)
  const invalid = typeof next === 'function' ? [] : next.invalid
  filterInput.setAttribute('aria-invalid', String(invalid.length > 0))
  filterError.hidden = !invalid.length
  // An invalid filter is not applied: the rows stay as the last valid one showed them.
  if (invalid.length) {
    filterError.textContent = `Invalid filter: ${invalid.map((p) => JSON.stringify(p)).join(', ')} ${invalid.length > 1 ? 'are' : 'is'} not a topic or prefix* (letters, digits, _ . : -; separate topics with commas). Showing the last valid filter.`
    return
  }
  accepts = next as (topic: string) => boolean
  for (const li of list.children) (li as HTMLElement).hidden = !accepts((li as HTMLElement).dataset.topic ?? '')
})

pauseButton.addEventListener('click', () => {
  paused = !paused
  pauseButton.setAttribute('aria-pressed', String(paused))
  if (!paused) {
    for (const e of pending.slice(-MAX_ROWS)) render(e)
    pending = []
    droppedWhilePaused = 0
  }
  showPending()
})

$('clear').addEventListener('click', () => {
  list.replaceChildren()
  empty.hidden = false
})

/** Counts are only true while connected: on a disconnect they are cleared, not left standing. */
const clearPresence = (why: string) => {
  const li = document.createElement('li')
  li.append(Object.assign(document.createElement('span'), { className: 'muted', textContent: why }))
  $('presence').replaceChildren(li)
}

const renderPresence = (topics: Record<string, number>) => {
  const ul = $('presence')
  const entries = Object.entries(topics)
  ul.replaceChildren(
    ...(entries.length ? entries : [['nobody', 0] as const]).map(([t, n]) => {
      const li = document.createElement('li')
      li.append(Object.assign(document.createElement('span'), { textContent: t === '*' ? 'all topics' : t }))
      li.append(Object.assign(document.createElement('b'), { textContent: String(n) }))
      return li
    }),
  )
}

// The form needs the development publish route (npm start); anywhere else it stays disabled.
const form = $<HTMLFormElement>('publish')
const result = $('publish-result')
type DevConfig = { publish?: boolean; relay?: 'leader' | 'standby' | null }
const devConfig = () =>
  fetch('/dev/config')
    .then((r) => (r.ok ? (r.json() as Promise<DevConfig>) : undefined))
    .catch(() => undefined)
/**
 * A standby relay (another one leads the database) delivers nothing to this edge: say so, and look again every few
 * seconds, since it leads as soon as the other one stops.
 */
const relayNotice = $('relay-notice')
const showRelay = (config: DevConfig | undefined) => {
  const standby = config?.relay === 'standby'
  relayNotice.hidden = !standby
  relayNotice.textContent = standby
    ? 'Another relay leads this database: the relay of this `npm start` is a standby, so this page gets events only once it leads (when the other one stops). Events you publish here go to the leading relay’s page.'
    : ''
  if (standby) setTimeout(() => void devConfig().then(showRelay), 5_000)
}
void devConfig().then((config) => {
  showRelay(config)
  if (!config?.publish || !token) return
  $<HTMLButtonElement>('publish-button').disabled = false
  result.textContent = ''
})

form.addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const topic = $<HTMLInputElement>('topic').value.trim()
  let data: unknown
  try {
    data = JSON.parse($<HTMLTextAreaElement>('data').value)
  } catch (err) {
    result.className = 'err'
    result.textContent = `not JSON: ${(err as Error).message}`
    return
  }
  const res = await fetch('/dev/publish', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ topic, data }),
  })
  const body = (await res.json()) as { seq?: number; error?: { message: string } }
  result.className = res.ok ? 'ok' : 'err'
  result.textContent = res.ok ? `committed as seq ${body.seq}` : (body.error?.message ?? `HTTP ${res.status}`)
})

/**
 * The tenant's head now (development route), or 0 when the route refuses (nothing is then marked replayed). Unreachable
 * (the server restarting) it throws, so the client retries the connection rather than open one whose replay it
 * cannot tell from live events.
 */
const devHead = () =>
  fetch('/dev/head', { headers: { authorization: `Bearer ${token}` } }).then(async (r) =>
    r.ok ? ((await r.json()) as { head: number }).head : 0,
  )

const MINT = `npx edge-relay token ${tenant}`

if (!token) {
  setStatus('closed')
  say(
    `No token. Open the URL that \`npm start\` printed (it ends with #token=…), or mint one with \`${MINT}\` and add #token=… to this URL.`,
  )
} else {
  const after = from !== null && /^\d+$/.test(from) ? Number(from) : undefined
  let stream: RelayClient | undefined
  stream = connect({
    url: location.origin,
    tenant,
    // Called before every connection: one that resumes (after=, or a reconnect) is first replayed what was
    // committed meanwhile, up to the head read here.
    getToken: async () => {
      replayThrough = (stream ? stream.lastSeq : after) !== undefined ? await devHead() : 0
      return token
    },
    presence: true,
    ...(after !== undefined ? { after } : {}),
    onEvent,
    onStatus: (s) => {
      setStatus(s)
      if (s !== 'live') clearPresence(s === 'closed' ? 'not connected' : 'not connected (reconnecting)')
    },
    onPresence: (p) => renderPresence(p.topics),
    onReset: (info) =>
      say(
        info.reason === 'reset'
          ? `Reset at ${time(new Date())}: the edge no longer holds what this page missed (an app would refetch its state now). Live from seq ${info.head + 1}.`
          : `Gap at ${time(new Date())}: expected seq ${info.expected}, got ${info.got} (an app would refetch its state now).`,
      ),
    // A refused token does not become valid by retrying: stop, and say why and what to do.
    onError: (err, status) => {
      if (status !== 401 && status !== 403) return
      stream?.close()
      say(
        `Stopped: the edge refused the token (${status}): ${err.message}. Open the URL that \`npm start\` printed, or mint a token with \`${MINT}\` and put it after #token= in this URL.`,
      )
    },
  })
}
