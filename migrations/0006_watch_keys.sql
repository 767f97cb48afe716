-- relay.watch() names each row by its key, not by a column called `id` (0005 is another branch's number).
--
-- Until now a watched table published {"op", "id"} read from a column named `id`: a table keyed otherwise published
-- {"id": null} for every change, which tells a subscriber nothing. Now:
--
--   relay.watch(tbl, tenant_column, topic)                        -- the key is the table's primary key
--   relay.watch(tbl, tenant_column, topic, array['sku', 'site'])  -- or the columns you name
--
-- and the event is {"op": "INSERT|UPDATE|DELETE", "key": {"sku": …, "site": …}}. A key that is exactly one column
-- named `id` keeps the old shape, {"op", "id"}, so what existing watchers receive does not change. A table with no
-- primary key falls back to an `id` column if it has one (what watch() read before); with neither, and no columns
-- named, watch() refuses with an error that says what to pass. Triggers created before this migration (two trigger
-- arguments) keep publishing {"op", "id"}: watch such a table again to have it publish its key.
--
-- Neither watch() nor unwatch() raises a NOTICE: they look the trigger up instead of `drop trigger if exists`,
-- which said "does not exist, skipping" on every first watch.

create or replace function relay.watch_trigger() returns trigger
language plpgsql as $$
declare
  r jsonb := to_jsonb(case when tg_op = 'DELETE' then old else new end);
  key jsonb;
begin
  -- Arguments: tenant column, topic, then the key columns (none: a trigger from before 0006, keyed by `id`).
  if tg_nargs = 2 or (tg_nargs = 3 and tg_argv[2] = 'id') then
    perform relay.publish(r ->> tg_argv[0], tg_argv[1], jsonb_build_object('op', tg_op, 'id', r -> 'id'));
  else
    select jsonb_object_agg(col, r -> col) into key from unnest(tg_argv[2:]) as col;
    perform relay.publish(r ->> tg_argv[0], tg_argv[1], jsonb_build_object('op', tg_op, 'key', key));
  end if;
  return null;
end
$$;

-- The old three-argument watch() would make every three-argument call ambiguous with the new one.
drop function if exists relay.watch(regclass, text, text);

create or replace function relay.watch(tbl regclass, tenant_column text, topic text, key_columns text[] default null) returns void
language plpgsql as $$
declare
  keys text[] := key_columns;
  missing text;
begin
  if topic is null or topic !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'relay.watch: invalid topic %', coalesce(quote_literal(topic), 'NULL') using errcode = '22023';
  end if;
  if not exists (
    select 1 from pg_attribute where attrelid = tbl and attname = tenant_column and attnum > 0 and not attisdropped
  ) then
    raise exception 'relay.watch: % has no column %', tbl, quote_ident(tenant_column) using errcode = '42703';
  end if;
  if keys is null then
    -- The primary key's columns, in key order.
    select array_agg(a.attname::text order by k.i) into keys
      from pg_index x
      cross join lateral unnest(x.indkey) with ordinality as k(attnum, i)
      join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum
     where x.indrelid = tbl and x.indisprimary;
    if keys is null and exists (
      select 1 from pg_attribute where attrelid = tbl and attname = 'id' and attnum > 0 and not attisdropped
    ) then
      keys := array['id'];
    end if;
    if keys is null then
      raise exception 'relay.watch: % has no primary key and no id column, so its events could not say which row changed', tbl
        using errcode = '42P10',
              hint = format('Name the column(s) that identify a row: select relay.watch(%L, %L, %L, array[''sku'']);',
                            tbl::text, tenant_column, topic);
    end if;
  end if;
  if cardinality(keys) = 0 then
    raise exception 'relay.watch: key_columns must name at least one column' using errcode = '22023';
  end if;
  select col into missing from unnest(keys) as col
   where col is null or not exists (
     select 1 from pg_attribute where attrelid = tbl and attname = col and attnum > 0 and not attisdropped)
   limit 1;
  if found then
    raise exception 'relay.watch: % has no column % (in key_columns)', tbl, coalesce(quote_ident(missing), 'NULL')
      using errcode = '42703';
  end if;
  perform relay.unwatch(tbl);
  execute format(
    'create trigger relay_watch after insert or update or delete on %s for each row execute function relay.watch_trigger(%s)',
    tbl, array_to_string(array(select quote_literal(a) from unnest(array[tenant_column, topic] || keys) as a), ', '));
end
$$;

comment on function relay.watch(regclass, text, text, text[]) is
  'Publishes {"op", "key": {...}} (or {"op", "id"} for a key that is just id) for every row change of tbl, to its tenant_column''s tenant under topic. relay.unwatch(tbl) stops it.';

-- Stops watching a table; a table not watched is left as it is, silently.
create or replace function relay.unwatch(tbl regclass) returns void
language plpgsql as $$
begin
  if exists (select 1 from pg_trigger where tgrelid = tbl and tgname = 'relay_watch' and not tgisinternal) then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
end
$$;
