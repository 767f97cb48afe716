import * as v from 'valibot'
import { RelayError } from './errors.ts'

/** Env values are strings: parse an optional integer with bounds, with the variable's name in the error. */
export const intVar = (min: number, max: number, fallback: number) =>
  v.pipe(
    v.optional(v.string(), String(fallback)),
    v.regex(/^\d+$/, 'must be a whole number'),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )

export const secretVar = (name: string) =>
  v.pipe(v.string(`${name} is required`), v.minLength(16, `${name} must be at least 16 characters`))

/** A configuration refused: one line per problem, each naming its variable. */
export class ConfigError extends RelayError {
  constructor(readonly issues: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n  ${issues.join('\n  ')}`)
  }
}

/** Validates env against a schema; the error names every bad variable and says what it must be. */
export const parseEnv = <S extends v.GenericSchema>(schema: S, env: Record<string, string | undefined>): v.InferOutput<S> => {
  const parsed = v.safeParse(schema, env)
  if (!parsed.success) {
    const lines = parsed.issues.map((i) => `${v.getDotPath(i) ?? '(env)'}: ${i.message}`)
    throw new ConfigError(lines)
  }
  return parsed.output
}
