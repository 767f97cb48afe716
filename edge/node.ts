/**
 * `edge-relay/node`: the edge on Node — served alone (startNodeEdge, with /metrics), or its fast stream path for an
 * app of your own served by @hono/node-server (nodeStreams: pass it as `streams` to createEdge).
 */
export { startNodeEdge, runNodeEdge, type NodeEdge, type NodeEdgeOptions } from './platform/node.ts'
export { nodeStreams } from './platform/node-sse.ts'
