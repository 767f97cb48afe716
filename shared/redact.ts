import { QUERY } from './protocol.ts'

/** Parameter names whose values are credentials, lower case. */
const TOKEN_NAMES = new Set([QUERY.accessToken, 'token'])

/** Every `name=value` of a query string (and of a fragment: cheaper to scrub too than to parse where one ends). */
const param = /([?&])([^=&#?]*)=([^&#]*)/g

/**
 * A parameter name as a server reads it: percent-escapes decoded (`access%5Ftoken`, `%61ccess_token`, any case of
 * hex) and case folded. By hand rather than decodeURIComponent, which throws on a malformed escape.
 */
const decodedName = (raw: string): string =>
  raw.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))).toLowerCase()

/**
 * A URL (or path with query) safe to log: the values of token query parameters replaced by `REDACTED`, however
 * their names are spelled (any case, percent-encoded), since the edge reads them all as the token.
 */
export const redactUrl = (url: string): string =>
  url.replace(param, (all, sep: string, name: string) => (TOKEN_NAMES.has(decodedName(name)) ? `${sep}${name}=REDACTED` : all))
