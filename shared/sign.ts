/**
 * Relay → edge request signing: `x-relay-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * Web Crypto only, so the same code runs in Node, workerd and Deno.
 */

const encoder = new TextEncoder()

const keyCache = new Map<string, Promise<CryptoKey>>()
const hmacKey = (secret: string) => {
  let key = keyCache.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ])
    keyCache.set(secret, key)
  }
  return key
}

const toHex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('')

const fromHex = (hex: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

export const sign = async (secret: string, body: string, nowS = Math.floor(Date.now() / 1000)): Promise<string> => {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(`${nowS}.${body}`))
  return `t=${nowS},v1=${toHex(mac)}`
}

export type SignatureCheck = { ok: true; t: number; mac: string } | { ok: false; reason: string }

/**
 * Verifies a signature header. `crypto.subtle.verify` compares in constant time, so a forger learns nothing
 * from response timing.
 */
export const verify = async (
  secret: string,
  header: string | undefined | null,
  body: string,
  windowS: number,
  nowS = Math.floor(Date.now() / 1000),
): Promise<SignatureCheck> => {
  if (!header) return { ok: false, reason: 'missing x-relay-signature header' }
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header)
  if (!m) return { ok: false, reason: 'x-relay-signature must be t=<unix>,v1=<hex sha256>' }
  const t = Number(m[1])
  if (Math.abs(nowS - t) > windowS) return { ok: false, reason: `signature timestamp outside the ${windowS}s window` }
  const mac = fromHex(m[2]!)!
  const good = await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, encoder.encode(`${t}.${body}`))
  return good ? { ok: true, t, mac: m[2]! } : { ok: false, reason: 'signature does not match the body' }
}
