-- edge-relay outbox: every event is a row; NOTIFY is only a nudge carrying the tenant id.

create schema if not exists relay;

-- The per-tenant counter. publish() increments a tenant's row inside the writing transaction, so the row lock
-- serialises that tenant's publishers until they commit or roll back. That is what makes seq gapless (a rollback
-- reverts the increment) and commit-ordered (the next publisher gets its seq only after the previous commits).
-- Cost: publishing transactions of ONE tenant run one at a time from their first publish() to their commit — keep
-- them short and publish last. Different tenants never wait for each other.
create table if not exists relay.heads (
  tenant text primary key,
  seq bigint not null check (seq >= 0)
);

create table if not exists relay.events (
  tenant text not null,
  seq bigint not null,
  topic text not null,
  data jsonb not null,
  created_at timestamptz not null default clock_timestamp(),
  primary key (tenant, seq),
  constraint events_tenant_format check (tenant ~ '^[A-Za-z0-9_-]{1,64}$'),
  constraint events_topic_format check (topic ~ '^[A-Za-z0-9_.:-]{1,128}$')
);
create index if not exists events_created_at on relay.events (created_at);

-- What the relay has delivered, per edge and tenant: the edge confirmed every seq up to `delivered`.
create table if not exists relay.cursors (
  edge text not null,
  tenant text not null,
  delivered bigint not null check (delivered >= 0),
  updated_at timestamptz not null default now(),
  primary key (edge, tenant)
);

-- Largest event data in bytes (JSON text). Override per database with
--   alter database mydb set relay.max_event_bytes = '131072';
-- or per transaction with set_config('relay.max_event_bytes', ..., true).
create or replace function relay.max_event_bytes() returns integer
language sql stable as $$
  select coalesce(nullif(current_setting('relay.max_event_bytes', true), '')::integer, 65536)
$$;

create or replace function relay.publish(tenant text, topic text, data jsonb) returns bigint
language plpgsql as $$
declare
  next_seq bigint;
  size integer;
begin
  if tenant is null or tenant !~ '^[A-Za-z0-9_-]{1,64}$' then
    raise exception 'relay.publish: invalid tenant %', coalesce(quote_literal(left(tenant, 80)), 'NULL')
      using errcode = '22023', hint = 'tenant ids match ^[A-Za-z0-9_-]{1,64}$';
  end if;
  if topic is null or topic !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'relay.publish: invalid topic %', coalesce(quote_literal(left(topic, 140)), 'NULL')
      using errcode = '22023', hint = 'topics match ^[A-Za-z0-9_.:-]{1,128}$';
  end if;
  if data is null then
    raise exception 'relay.publish: data must be a JSON value, not SQL NULL'
      using errcode = '22004', hint = 'use ''null''::jsonb for a JSON null';
  end if;
  size := octet_length(data::text);
  if size > relay.max_event_bytes() then
    raise exception 'relay.publish: event data is % bytes, over the limit of % bytes', size, relay.max_event_bytes()
      using errcode = '54000', hint = 'publish a reference (an id) and let clients fetch the rest, or raise relay.max_event_bytes';
  end if;

  insert into relay.heads as h (tenant, seq) values (publish.tenant, 1)
    on conflict on constraint heads_pkey do update set seq = h.seq + 1
    returning h.seq into next_seq;

  insert into relay.events (tenant, seq, topic, data) values (publish.tenant, next_seq, publish.topic, publish.data);

  -- The nudge: identical payloads fold within a transaction, so one per tenant per transaction.
  -- `set relay.notify = off` (poll mode) skips it; the relay then finds new heads by polling.
  if coalesce(current_setting('relay.notify', true), '') <> 'off' then
    perform pg_notify('relay', publish.tenant);
  end if;
  return next_seq;
end
$$;

-- Trigger body for relay.watch(): publishes {"op", "id"} for each row change.
create or replace function relay.watch_trigger() returns trigger
language plpgsql as $$
declare
  r jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
begin
  perform relay.publish(r ->> tg_argv[0], tg_argv[1], jsonb_build_object('op', tg_op, 'id', r -> 'id'));
  return null;
end
$$;

create or replace function relay.watch(tbl regclass, tenant_column text, topic text) returns void
language plpgsql as $$
begin
  if topic is null or topic !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'relay.watch: invalid topic %', coalesce(quote_literal(topic), 'NULL') using errcode = '22023';
  end if;
  if not exists (
    select 1 from pg_attribute where attrelid = tbl and attname = tenant_column and attnum > 0 and not attisdropped
  ) then
    raise exception 'relay.watch: % has no column %', tbl, quote_ident(tenant_column) using errcode = '42703';
  end if;
  execute format('drop trigger if exists relay_watch on %s', tbl);
  execute format(
    'create trigger relay_watch after insert or update or delete on %s for each row execute function relay.watch_trigger(%L, %L)',
    tbl, tenant_column, topic);
end
$$;

create or replace function relay.unwatch(tbl regclass) returns void
language plpgsql as $$
begin
  execute format('drop trigger if exists relay_watch on %s', tbl);
end
$$;
