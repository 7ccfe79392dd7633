-- Rebuild a row of buildq.builds from the audit trail.
create or replace function buildq.build_as_of(
  build_id bigint,
  as_of timestamptz default null
)
returns buildq.builds
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event record;
  v_row jsonb;
  v_seen boolean := false;
begin
  if build_as_of.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a build, e.g. from buildq.build_history.';
  end if;

  -- Each row's changes are serialized by its row lock, so event ids follow
  -- the order in which the changes were committed.
  for v_event in
    select e.event, e.new_values, e.occurred_at
    from buildq.build_events as e
    where e.build_id = build_as_of.build_id and e.step_nr is null
    order by e.id
  loop
    v_seen := true;
    exit when v_event.occurred_at > build_as_of.as_of;

    if v_event.event = 'deleted' then
      v_row := null;
    else
      v_row := coalesce(v_row, '{}') || v_event.new_values;
    end if;
  end loop;

  if not v_seen then
    raise exception 'build % has no events in buildq.build_events',
      build_as_of.build_id
      using errcode = 'BQ001',
        hint = 'Check the id; the trail starts when migration 3 was applied.';
  end if;

  return jsonb_populate_record(null::buildq.builds, v_row);
end;
$$;

comment on function buildq.build_as_of(bigint, timestamptz) is
'Replays the events of a build in buildq.build_events and returns the row '
'as it was at as_of (by occurred_at), or now when as_of is null. Returns '
'null when the build did not exist at that time or was deleted. Raises '
'BQ001 when the build has no events at all.';

revoke all on function buildq.build_as_of(bigint, timestamptz) from public;

select buildq.grant_execute('buildq.build_as_of(bigint, timestamptz)', 'reader');
