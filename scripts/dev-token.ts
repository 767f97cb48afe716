/**
 * `npx tsx scripts/dev-token.ts <tenant> [topics,…] [--hours N]`: prints an HS256 token for a development edge
 * (`npm start`, `npm run dev:worker`), signed with EDGE_JWT_SECRET if set, else with the development secret `npm start`
 * keeps in .data/. Every topic unless topics are given; 24 hours unless --hours. For the README's examples and curl.
 */
import { parseArgs } from 'node:util'
import * as v from 'valibot'
import { TenantId, TopicGrant } from '../shared/schema.ts'
import { devJwtSecret, mintDevToken } from './dev-common.ts'

const usage = 'usage: npx tsx scripts/dev-token.ts <tenant> [topics,…] [--hours N]'
const { positionals, values } = parseArgs({ allowPositionals: true, options: { hours: { type: 'string', default: '24' } } })
const [tenant, topicList, ...extra] = positionals
const topics = topicList?.split(',').flatMap((t) => t.trim() || [])
const hours = Number(values.hours)
const problem =
  !tenant || !v.is(TenantId, tenant)
    ? `tenant must match ^[A-Za-z0-9_-]{1,64}$, got ${JSON.stringify(tenant ?? '')}`
    : topics?.find((t) => !v.is(TopicGrant, t))
      ? `invalid topic ${JSON.stringify(topics.find((t) => !v.is(TopicGrant, t)))}`
      : !Number.isInteger(hours) || hours < 1 || hours > 24 * 365
        ? '--hours must be a whole number of hours'
        : extra.length
          ? `unexpected arguments: ${extra.join(' ')}`
          : undefined
if (problem) {
  console.error(`${problem}\n${usage}`)
  process.exit(2)
}
console.log(await mintDevToken(process.env.EDGE_JWT_SECRET || devJwtSecret(), tenant!, topics, hours))
