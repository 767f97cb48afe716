/**
 * What `GET /v1/tenants/:tenant/presence` answers and what an `event: presence` carries: how many subscribers a
 * tenant's room holds, by what they subscribed to. A key is a topic a subscriber asked for; a subscriber that asked
 * for no topics counts under each grant of its token (`orders*`), or under `*` when its token grants every topic.
 * A subscriber to `a,b` counts once under `a` and once under `b`, and once in `subscribers`.
 *
 * A token limited to some topics sees only the keys its grants allow, and `subscribers` counts only the subscribers
 * counted under at least one of those keys (each once, however many of its keys are shown): a subscriber to other
 * topics only, or to all topics (`*`), is not disclosed to it. A token granted every topic sees every subscriber.
 */
export interface PresenceSnapshot {
  tenant: string
  subscribers: number
  topics: Record<string, number>
}
