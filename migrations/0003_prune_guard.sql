-- relay.prune refuses a negative keep_count: `head - keep_count` would lie beyond the head, so a sign error in a
-- caller (or a cron job) would delete every delivered event of every tenant instead of keeping the newest ones.
-- Otherwise the body of 0002_retention.sql; `create or replace` keeps the signature, so callers are unchanged.
create or replace function relay.prune(edges text[], keep_age interval, keep_count bigint, max_rows integer default 10000)
returns bigint
language plpgsql as $$
declare
  deleted bigint;
begin
  if keep_count < 0 then
    raise exception 'relay.prune: keep_count must be zero or more (got %): it is how many events to keep behind each tenant''s head', keep_count
      using errcode = '22023', hint = 'pass null to prune by age only';
  end if;
  if keep_age is null and keep_count is null then
    return 0;
  end if;
  -- Two scans, each over prunable rows only: by age through events_created_at, by count through the primary key
  -- (an OR in one WHERE would make the planner read every event of every tenant on each run).
  with bound as (
    select h.tenant,
      (select coalesce(min(coalesce(c.delivered, 0)), 0)
         from unnest(edges) as e(edge)
         left join relay.cursors c on c.edge = e.edge and c.tenant = h.tenant) as delivered,
      h.seq as head
    from relay.heads h
  ), by_age as (
    select ev.tenant, ev.seq
    from relay.events ev
    join bound b on b.tenant = ev.tenant
    where keep_age is not null and ev.created_at < now() - keep_age and ev.seq <= b.delivered
    limit max_rows
  ), by_count as (
    select ev.tenant, ev.seq
    from bound b
    join relay.events ev on ev.tenant = b.tenant and ev.seq <= least(b.delivered, b.head - keep_count)
    where keep_count is not null
    limit max_rows
  ), doomed as (
    select * from by_age union select * from by_count
  )
  delete from relay.events ev using doomed d where ev.tenant = d.tenant and ev.seq = d.seq;
  get diagnostics deleted = row_count;
  return deleted;
end
$$;
