/**
 * Relay → edge request signing: `x-relay-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * Web Crypto by default, so the same code runs in Node, workerd and Deno; a runtime may pass a faster `Hmac`
 * (Node: shared/node/hmac.ts).
 */

const encoder = new TextEncoder()

const keyCache = new Map<string, Promise<CryptoKey>>()
const HMAC = { name: 'HMAC', hash: 'SHA-256' }
const hmacKey = (secret: string) => {
  let key = keyCache.get(secret)
  if (!key) keyCache.set(secret, (key = crypto.subtle.importKey('raw', encoder.encode(secret), HMAC, false, ['sign', 'verify'])))
  return key
}

/** HMAC-SHA256 as lowercase hex, and its constant-time check. */
export interface Hmac {
  sign(secret: string, data: string): string | Promise<string>
  /** `macHex` is 64 lowercase hex digits (checked by the caller). */
  verify(secret: string, data: string, macHex: string): boolean | Promise<boolean>
}

const toHex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('')

const fromHex = (hex: string): Uint8Array<ArrayBuffer> | undefined => {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

/** Web Crypto: `crypto.subtle.verify` compares in constant time, so a forger learns nothing from response timing. */
export const webHmac: Hmac = {
  sign: async (secret, data) => toHex(await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(data))),
  verify: async (secret, data, macHex) => crypto.subtle.verify('HMAC', await hmacKey(secret), fromHex(macHex)!, encoder.encode(data)),
}

export const sign = async (secret: string, body: string, nowS = Math.floor(Date.now() / 1000), hmac: Hmac = webHmac): Promise<string> =>
  `t=${nowS},v1=${await hmac.sign(secret, `${nowS}.${body}`)}`

export type SignatureCheck = { ok: true; t: number; mac: string } | { ok: false; reason: string }

/** Verifies a signature header (the MAC in constant time: see `Hmac`). */
export const verify = async (
  secret: string,
  header: string | undefined | null,
  body: string,
  windowS: number,
  nowS = Math.floor(Date.now() / 1000),
  hmac: Hmac = webHmac,
): Promise<SignatureCheck> => {
  if (!header) return { ok: false, reason: 'missing x-relay-signature header' }
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header)
  if (!m) return { ok: false, reason: 'x-relay-signature must be t=<unix>,v1=<hex sha256>' }
  const t = Number(m[1])
  if (Math.abs(nowS - t) > windowS) return { ok: false, reason: `signature timestamp outside the ${windowS}s window` }
  const good = await hmac.verify(secret, `${t}.${body}`, m[2]!)
  return good ? { ok: true, t, mac: m[2]! } : { ok: false, reason: 'signature does not match the body' }
}
