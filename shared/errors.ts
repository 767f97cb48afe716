/** Every rejection the edge or relay makes, by code. The HTTP status lives with the code, so one onError maps all. */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  INVALID_TENANT: 400,
  INVALID_TOPIC: 400,
  INVALID_LAST_EVENT_ID: 400,
  INVALID_BODY: 400,
  TOKEN_MISSING: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  SIGNATURE_INVALID: 401,
  SIGNATURE_REPLAYED: 401,
  TENANT_FORBIDDEN: 403,
  TOPIC_FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  TOO_LARGE: 413,
  QUERY_TOO_LONG: 414,
  TOO_MANY: 429,
  NOT_READY: 503,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

/** One error class with a string code (postgres.js style). Messages say what was wrong and what to do. */
export class RelayError extends Error {
  override readonly name = 'RelayError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
  get status(): number {
    return ERROR_STATUS[this.code]
  }
  toJSON() {
    return { error: { code: this.code, message: this.message } }
  }
}
