-- Move an unfinished build to the front of the queue.
create or replace function buildq.bump_build(
  build_id bigint
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_current record;
begin
  if bump_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  -- Bumps take turns, so the later of two concurrent bumps reads the
  -- earlier one's global_priority and ends up in front of it. The key is the
  -- bytes of "bq_bump" read as an integer.
  perform pg_advisory_xact_lock(27709202205338992);

  update buildq.builds as b
  set global_priority = f.front + 1
  from (
    select max(q.global_priority) as front
    from buildq.builds as q
    where q.finished = 0 and q.id <> bump_build.build_id
  ) as f
  where
    b.id = bump_build.build_id
    and b.finished = 0
    and b.global_priority <= f.front
    and f.front < 2147483647;

  if found then
    return true;
  end if;

  select
    b.finished,
    b.global_priority,
    b.build_status,
    s.name as status_name,
    (
      select max(q.global_priority)
      from buildq.builds as q
      where q.finished = 0 and q.id <> bump_build.build_id
    ) as front
  into v_current
  from buildq.builds as b
  left join buildq.build_statuses as s on b.build_status = s.code
  where b.id = bump_build.build_id;

  if not found then
    raise exception 'build % does not exist', bump_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds.';
  end if;

  if v_current.finished = 1 then
    raise notice 'build % is already finished as % (status %); not bumped',
      bump_build.build_id, v_current.status_name, v_current.build_status;
  elsif v_current.front = 2147483647 then
    -- One more would overflow the integer column, and no value ranks higher.
    raise exception 'build % cannot be bumped because another unfinished '
      'build has global_priority %, the maximum integer',
      bump_build.build_id, v_current.front
      using errcode = 'numeric_value_out_of_range',
        hint = 'Cancel or finish the builds queued with that global_priority, '
          'or queue builds with a lower one.';
  else
    raise notice 'build % is already at the front of the queue '
      '(global_priority %); not bumped',
      bump_build.build_id, v_current.global_priority;
  end if;

  return false;
end;
$$;

comment on function buildq.bump_build(bigint) is
'Moves an unfinished build to the front of the queue by setting its '
'global_priority one above the highest of all other unfinished builds. '
'Returns true when it changed the build, false with a notice when the build '
'is finished or already ahead of every other unfinished build. Raises '
'BQ001 for an unknown id, 22004 for a null id and 22003 when another '
'unfinished build already has the maximum global_priority (2147483647).';

revoke all on function buildq.bump_build(bigint) from public;

select buildq.grant_execute('buildq.bump_build(bigint)', 'operator');
