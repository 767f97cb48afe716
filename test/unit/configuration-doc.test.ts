/**
 * docs/configuration.md's table against the schemas, both ways: every variable a schema reads is documented once,
 * for the processes that read it; every documented variable is read; and each documented default is what the
 * schema gives when the variable is unset.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { edgeVariables, loadEdgeEnv, loadWorkersEnv, workersVariables } from '../../edge/config.ts'
import { loadRelayConfig, relayVariables } from '../../relay/config.ts'
import { ConfigError, RETIRED } from '../../shared/env.ts'

const doc = readFileSync(resolve(import.meta.dirname, '../../docs/configuration.md'), 'utf8')

/** The lines of a `## <title>` section. */
const section = (title: string) => {
  const start = doc.indexOf(`\n## ${title}\n`)
  if (start === -1) throw new Error(`docs/configuration.md has no "## ${title}" section`)
  const end = doc.indexOf('\n## ', start + 1)
  return doc.slice(start, end === -1 ? undefined : end).split('\n')
}

interface Row {
  name: string
  process: string
  default: string
}

const rows: Row[] = section('Variables')
  .filter((line) => line.startsWith('| `'))
  .map((line) => {
    const [name, process, dflt] = line
      .split('|')
      .slice(1, 4)
      .map((cell) => cell.trim())
    return { name: name!.replace(/`/g, ''), process: process!, default: dflt! }
  })

type Load = (env: Record<string, string>) => Record<string, unknown>
interface Schema {
  keys: string[]
  load: Load
  /** Complete environments, each setting what the schema requires (a variable is checked against one without it). */
  bases: Record<string, string>[]
}

const SECRET = 'a-secret-of-enough-length-0123'
const schemas: Record<'relay' | 'edge' | 'workers', Schema> = {
  relay: {
    keys: Object.keys(relayVariables),
    load: loadRelayConfig,
    bases: [{ DATABASE_URL: 'postgres://u@db.internal/app', EDGE_URL: 'https://edge.example', RELAY_SECRET: SECRET }],
  },
  edge: {
    keys: Object.keys(edgeVariables),
    load: loadEdgeEnv,
    bases: [
      { RELAY_SECRET: SECRET, EDGE_JWT_SECRET: SECRET },
      { RELAY_SECRET: SECRET, EDGE_JWKS_URL: 'https://idp.example/jwks', EDGE_TICKET_SECRET: SECRET },
    ],
  },
  workers: {
    keys: Object.keys(workersVariables),
    load: loadWorkersEnv,
    bases: [
      { RELAY_SECRET: SECRET, EDGE_JWT_SECRET: SECRET },
      { RELAY_SECRET: SECRET, EDGE_JWKS_URL: 'https://idp.example/jwks', EDGE_TICKET_SECRET: SECRET },
    ],
  },
}

/** Which processes read `name`, in the table's words. */
const processOf = (name: string) => {
  const relay = schemas.relay.keys.includes(name)
  const edge = schemas.edge.keys.includes(name)
  const workers = schemas.workers.keys.includes(name)
  if (relay && edge) return 'relay, edge'
  if (relay) return 'relay'
  if (edge) return 'edge'
  return workers ? 'edge (Workers)' : undefined
}

/** The schemas that read `name`. */
const readers = (name: string) => (Object.values(schemas) as Schema[]).filter((s) => s.keys.includes(name))

const shown = (value: unknown) =>
  Array.isArray(value) ? (value.length ? value.join(',') : undefined) : value === undefined ? undefined : String(value)

describe('docs/configuration.md', () => {
  it('documents every variable of every schema, once, for the processes that read it', () => {
    const all = [...new Set([...schemas.relay.keys, ...schemas.edge.keys, ...schemas.workers.keys])].sort()
    expect(rows.map((r) => r.name).sort()).toEqual(all)
    for (const row of rows) expect(row.process, row.name).toBe(processOf(row.name))
  })

  it('documents only variables a schema reads', () => {
    for (const row of rows) expect(readers(row.name), `${row.name} is documented but no schema reads it`).not.toEqual([])
  })

  it('states each default as the schema gives it for an unset variable', () => {
    for (const row of rows)
      for (const schema of readers(row.name)) {
        if (row.default === 'required') continue // the next test
        const base = schema.bases.find((b) => !(row.name in b))!
        if (row.default === '—') {
          expect(shown(schema.load(base)[row.name]), `${row.name} is documented as unset by default`).toBeUndefined()
          continue
        }
        // "`5000`; `250` with `RELAY_MODE=poll`": the default, then a default under another setting.
        const m = /^`([^`]*)`(?:; `([^`]*)` with `(\w+)=([^`]*)`)?$/.exec(row.default)
        expect(m, `${row.name}: a default is \`value\`, required or —`).not.toBeNull()
        expect(shown(schema.load(base)[row.name]), row.name).toBe(m![1])
        if (m![2] !== undefined)
          expect(shown(schema.load({ ...base, [m![3]!]: m![4]! })[row.name]), `${row.name} with ${m![3]}=${m![4]}`).toBe(m![2])
      }
  })

  it('documents as required exactly the variables a process cannot start without', () => {
    for (const row of rows.filter((r) => r.default === 'required'))
      for (const schema of readers(row.name)) {
        const base = schema.bases[0]!
        const { [row.name]: _, ...without } = base
        let lines: readonly string[] = []
        try {
          schema.load(without)
        } catch (err) {
          lines = err instanceof ConfigError ? err.issues : []
        }
        expect(
          lines.some((l) => l.startsWith(`${row.name}: `)),
          `${row.name} missing must be refused, naming it`,
        ).toBe(true)
      }
  })

  it('lists every retired variable, none of which a schema reads', () => {
    const retired = section('Retired variables').join('\n')
    for (const name of Object.keys(RETIRED)) {
      expect(retired, name).toContain(`\`${name}\``)
      expect(readers(name), name).toEqual([])
    }
  })
})
