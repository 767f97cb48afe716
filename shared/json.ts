import { RelayError } from './errors.ts'

/** `JSON.parse` for request bodies: malformed JSON becomes a 400 INVALID_BODY with `message`, not a SyntaxError. */
export const parseJsonBody = (text: string, message: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    throw new RelayError('INVALID_BODY', message)
  }
}
