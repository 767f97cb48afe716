-- Which set of rooms each edge served when the relay last asked it (POST /internal/hello). Rooms in memory start
-- empty with every edge process; the relay's cursors then say "delivered" for events the new rooms never got. When
-- an edge answers with an instance other than the one recorded here, the relay checks each tenant's room against
-- its cursor and refills what was lost, and only then records the new instance (a relay that dies half-way checks
-- again). One row per edge; written once per edge restart.
create table if not exists relay.edges (
  edge text primary key,
  instance text not null,
  checked_at timestamptz not null default now()
);
