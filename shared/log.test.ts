import { afterEach, describe, expect, it, vi } from 'vitest'
import { log, logs, setLogLevel } from './log.ts'

describe('LOG_LEVEL (setLogLevel)', () => {
  afterEach(() => {
    setLogLevel('info')
    vi.restoreAllMocks()
  })

  it('writes the lines at or above the level, and no others', () => {
    const written: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: string) => void written.push(JSON.parse(line).msg))
    log('debug', 'hidden by default')
    setLogLevel('debug')
    log('debug', 'shown at debug')
    setLogLevel('warn')
    log('info', 'hidden at warn')
    log('warn', 'shown at warn')
    log('error', 'shown too')
    expect(written).toEqual(['shown at debug', 'shown at warn', 'shown too'])
    expect([logs('info'), logs('warn')]).toEqual([false, true])
  })
})
