import { grantsAllow } from '../../shared/topics.ts'

/**
 * Which topics a subscription receives: the topics it asked for (none = all), limited by the topics its token
 * grants (none = all; `prefix*` wildcards). Plain data so that it can travel to a Durable Object.
 */
export interface TopicFilter {
  requested?: readonly string[]
  grants?: readonly string[]
}

// Grant matching lives in shared/ so that the browser matches grants exactly as the edge does.
export { grantsAllow } from '../../shared/topics.ts'

/** Compiles a filter into a predicate; exact topic sets become a Set lookup. */
export const topicMatcher = ({ requested, grants }: TopicFilter): ((topic: string) => boolean) => {
  if (requested && requested.length > 0) {
    const allowed = new Set(requested.filter((t) => grantsAllow(grants, t)))
    return (topic) => allowed.has(topic)
  }
  if (grants === undefined) return () => true
  return (topic) => grantsAllow(grants, topic)
}
