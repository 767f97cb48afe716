/**
 * How a token's topic grants read: `orders` allows exactly `orders`, `orders*` every topic that starts with
 * `orders`. Pure and dependency-free, so the edge's filters and the browser (the live-tail page's topic filter)
 * match grants the same way.
 */

/** Whether one grant (`topic` or `prefix*`) allows `topic`. */
export const grantAllows = (grant: string, topic: string): boolean =>
  grant.endsWith('*') ? topic.startsWith(grant.slice(0, -1)) : grant === topic

/** Whether any of `grants` allows `topic`; no grants at all (undefined) allows every topic. */
export const grantsAllow = (grants: readonly string[] | undefined, topic: string): boolean =>
  grants === undefined || grants.some((g) => grantAllows(g, topic))
