import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { SigningKey } from './keys.ts'

export { mintWith, signingKey, unsignedToken, type SigningKey } from './keys.ts'

/**
 * Serves a JWKS on 127.0.0.1 (port 0); `keys` may be changed at any time (rotation), `fetches` counts requests,
 * `delayMs` holds each answer back (a slow key server keeps requests in authentication that long).
 */
export const startJwksServer = async (keys: SigningKey[]) => {
  const state = { keys, fetches: 0, down: false, delayMs: 0 }
  const server = createServer((_req, res) => {
    state.fetches++
    if (state.down) return res.writeHead(500).end('down')
    const answer = () =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }))
    if (state.delayMs > 0) setTimeout(answer, state.delayMs)
    else answer()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    state,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}
