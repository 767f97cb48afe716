-- Retention: the relay prunes relay.events beyond a window, never past what every edge has confirmed.

-- Deletes a batch of events (up to `max_rows` by age plus `max_rows` by count) that are outside the window AND
-- delivered to every edge in `edges`:
--   outside the window = older than `keep_age` (when not null) or more than `keep_count` behind the tenant's head
--   (when not null); delivered = seq <= the smallest cursor among `edges` for that tenant (an edge with no cursor
--   counts as 0, so nothing of that tenant is pruned until every edge has it).
-- Returns the number of rows deleted: call again while it returns `max_rows` or more. Safe to run from cron as well:
--   select relay.prune(array['https://edge.example.com'], interval '7 days', null);
create or replace function relay.prune(edges text[], keep_age interval, keep_count bigint, max_rows integer default 10000)
returns bigint
language plpgsql as $$
declare
  deleted bigint;
begin
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
