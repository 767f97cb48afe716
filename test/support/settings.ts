import { loadEdgeEnv, loadWorkersEnv, type EdgeSettings, type WorkersSettings } from '../../edge/config.ts'
import { JWT_SECRET, RELAY_SECRET } from './tokens.ts'

/** The test secrets, a free port on loopback, and `over`: what every test edge starts from. */
const testEnv = (over: Record<string, string>) => ({ EDGE_JWT_SECRET: JWT_SECRET, RELAY_SECRET, HOST: '127.0.0.1', PORT: '0', ...over })

/** The edge's complete settings as its schema makes them from a test's variables (every other default applied). */
export const edgeSettings = (over: Record<string, string> = {}): EdgeSettings => loadEdgeEnv(testEnv(over))

/** The Worker's complete settings as its schema makes them from a test's variables. */
export const workersSettings = (over: Record<string, string> = {}): WorkersSettings => loadWorkersEnv(testEnv(over))
