import { QUERY } from './protocol.ts'

const tokenParam = new RegExp(`([?&](?:${QUERY.accessToken}|token)=)[^&#]*`, 'gi')

/** A URL (or path with query) safe to log: token query parameters replaced by `REDACTED`. */
export const redactUrl = (url: string): string => url.replace(tokenParam, '$1REDACTED')
