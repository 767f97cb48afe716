/**
 * Which topics a subscription receives: the topics it asked for (none = all), limited by the topics its token
 * grants (none = all; `prefix*` wildcards). Plain data so that it can travel to a Durable Object.
 */
export interface TopicFilter {
  requested?: readonly string[]
  grants?: readonly string[]
}

export const grantAllows = (grant: string, topic: string): boolean =>
  grant.endsWith('*') ? topic.startsWith(grant.slice(0, -1)) : grant === topic

export const grantsAllow = (grants: readonly string[] | undefined, topic: string): boolean =>
  grants === undefined || grants.some((g) => grantAllows(g, topic))

/** Compiles a filter into a predicate; exact topic sets become a Set lookup. */
export const topicMatcher = (filter: TopicFilter): ((topic: string) => boolean) => {
  const { requested, grants } = filter
  if (requested && requested.length > 0) {
    const allowed = new Set(requested.filter((t) => grantsAllow(grants, t)))
    return (topic) => allowed.has(topic)
  }
  if (grants === undefined) return () => true
  return (topic) => grantsAllow(grants, topic)
}
