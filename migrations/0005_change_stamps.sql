-- Change stamps: every publish stamps its tenant's head from one sequence, so that the relay in poll mode reads
-- only the heads that changed since its last look (`where stamp > $1`, through heads_stamp), not every tenant's.
-- And relay.publish_many(): many events of one tenant and topic for one head-row update and one nudge.

-- `cache 1` (the default) on purpose: per-session caches would hand out stamps far from the order they are taken in,
-- and the poller's window for late committers (relay/poller.ts) counts on stamps rising with time.
create sequence if not exists relay.change_stamp as bigint;

-- Null until the tenant's next publish after this migration (the relay's catch-up sweep covers those heads).
-- Cost: the index makes every head update a non-HOT update (one more index entry per publish).
alter table relay.heads add column if not exists stamp bigint;
create index if not exists heads_stamp on relay.heads (stamp);

-- The checks publish() made, shared by both publishing functions; `caller` names the function in the message.
create or replace function relay.check_target(caller text, tenant text, topic text) returns void
language plpgsql immutable as $$
begin
  if tenant is null or tenant !~ '^[A-Za-z0-9_-]{1,64}$' then
    raise exception '%: invalid tenant %', caller, coalesce(quote_literal(left(tenant, 80)), 'NULL')
      using errcode = '22023', hint = 'tenant ids match ^[A-Za-z0-9_-]{1,64}$';
  end if;
  if topic is null or topic !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception '%: invalid topic %', caller, coalesce(quote_literal(left(topic, 140)), 'NULL')
      using errcode = '22023', hint = 'topics match ^[A-Za-z0-9_.:-]{1,128}$';
  end if;
end
$$;

-- `what` names the value in the message: 'data', or 'data[3]' for an element of publish_many's array.
create or replace function relay.check_data(caller text, data jsonb, what text) returns void
language plpgsql stable as $$
declare
  size integer;
begin
  if data is null then
    raise exception '%: % must be a JSON value, not SQL NULL', caller, what
      using errcode = '22004', hint = 'use ''null''::jsonb for a JSON null';
  end if;
  size := octet_length(data::text);
  if size > relay.max_event_bytes() then
    raise exception '%: event % is % bytes, over the limit of % bytes', caller, what, size, relay.max_event_bytes()
      using errcode = '54000', hint = 'publish a reference (an id) and let clients fetch the rest, or raise relay.max_event_bytes';
  end if;
end
$$;

-- Moves a tenant's head by `n` and stamps it, in the one statement that takes the head-row lock (see 0001 for what
-- that lock orders). Returns the new head. nextval in the UPDATE is evaluated once the row is ours, so a publisher
-- that waited for the lock gets a stamp taken after the previous holder committed.
create or replace function relay.advance_head(tenant text, n bigint) returns bigint
language plpgsql as $$
declare
  head bigint;
begin
  update relay.heads h set seq = h.seq + n, stamp = nextval('relay.change_stamp')
    where h.tenant = advance_head.tenant
    returning h.seq into head;
  if not found then
    insert into relay.heads as h (tenant, seq, stamp) values (advance_head.tenant, n, nextval('relay.change_stamp'))
      on conflict on constraint heads_pkey do update set seq = h.seq + n, stamp = nextval('relay.change_stamp')
      returning h.seq into head;
  end if;
  return head;
end
$$;

-- The nudge: identical payloads fold within a transaction, so one per tenant per transaction.
-- `set relay.notify = off` (poll mode) skips it; the relay then finds changed heads by their stamps.
create or replace function relay.nudge(tenant text) returns void
language plpgsql as $$
begin
  if coalesce(current_setting('relay.notify', true), '') <> 'off' then
    perform pg_notify('relay', tenant);
  end if;
end
$$;

create or replace function relay.publish(tenant text, topic text, data jsonb) returns bigint
language plpgsql as $$
declare
  next_seq bigint;
begin
  perform relay.check_target('relay.publish', publish.tenant, publish.topic);
  perform relay.check_data('relay.publish', publish.data, 'data');
  next_seq := relay.advance_head(publish.tenant, 1);
  insert into relay.events (tenant, seq, topic, data) values (publish.tenant, next_seq, publish.topic, publish.data);
  perform relay.nudge(publish.tenant);
  return next_seq;
end
$$;

-- Publishes every element of `data`, in array order, as consecutive seqs of one tenant and topic: one head-row
-- update and one nudge for all of them. Returns the last seq. Every element is checked first, as publish() checks
-- its data, so a bad one (SQL NULL, over the size limit) fails the call with nothing written. An empty array
-- publishes nothing and returns NULL (no lock, no nudge); a NULL array is refused like NULL data (array_agg over
-- no rows gives NULL: coalesce(array_agg(...), '{}')).
create or replace function relay.publish_many(tenant text, topic text, data jsonb[]) returns bigint
language plpgsql as $$
declare
  n integer := 0;
  item jsonb;
  last_seq bigint;
begin
  perform relay.check_target('relay.publish_many', publish_many.tenant, publish_many.topic);
  if data is null then
    raise exception 'relay.publish_many: data must be an array of JSON values, not SQL NULL'
      using errcode = '22004', hint = 'pass ''{}'' to publish nothing: coalesce(array_agg(...), ''{}'')';
  end if;
  if array_ndims(data) > 1 then
    raise exception 'relay.publish_many: data must be a one-dimensional array (got % dimensions)', array_ndims(data)
      using errcode = '22023';
  end if;
  -- foreach, not data[i]: subscripting an array of varlena values walks it from the start each time.
  foreach item in array data loop
    n := n + 1;
    perform relay.check_data('relay.publish_many', item, format('data[%s]', n));
  end loop;
  if n = 0 then
    return null;
  end if;
  last_seq := relay.advance_head(publish_many.tenant, n);
  insert into relay.events (tenant, seq, topic, data)
    select publish_many.tenant, last_seq - n + e.i, publish_many.topic, e.item
    from unnest(data) with ordinality as e(item, i);
  perform relay.nudge(publish_many.tenant);
  return last_seq;
end
$$;
