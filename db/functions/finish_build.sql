-- Record the result of an unfinished build. The guarded update lets exactly
-- one of several concurrent callers win, and the others get false.
create or replace function buildq.finish_build(
  build_id bigint,
  status integer,
  start_time timestamptz default now(),
  stop_time timestamptz default now(),
  is_cached boolean default false,
  size bigint default null,
  closure_size bigint default null,
  release_name text default null,
  error_msg text default null,
  finished_by text default null,
  attempt integer default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_status smallint;
  v_current record;
begin
  if finish_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  v_status := buildq.check_status_code(finish_build.status, false);

  if finish_build.start_time is null or finish_build.stop_time is null then
    raise exception 'start_time and stop_time must not be null (build %)',
      finish_build.build_id
      using errcode = 'null_value_not_allowed',
        hint = 'Omit them to use the current time.';
  end if;

  if finish_build.stop_time < finish_build.start_time then
    raise exception 'stop_time % is before start_time % (build %)',
      finish_build.stop_time, finish_build.start_time, finish_build.build_id
      using errcode = 'BQ004',
        hint = 'Pass a stop_time at or after the start_time.';
  end if;

  if finish_build.size < 0 then
    raise exception 'size % must not be negative (build %)',
      finish_build.size, finish_build.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the output''s byte count, or null when unknown.';
  end if;

  if finish_build.closure_size < 0 then
    raise exception 'closure_size % must not be negative (build %)',
      finish_build.closure_size, finish_build.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the closure''s byte count, or null when unknown.';
  end if;

  if finish_build.is_cached is null then
    raise exception 'is_cached must not be null (build %)', finish_build.build_id
      using errcode = 'null_value_not_allowed',
        hint = 'Pass true or false, or omit it for false.';
  end if;

  if finish_build.finished_by = '' then
    raise exception 'finished_by must not be empty (build %)', finish_build.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the runner id, or omit it to record the database user.';
  end if;

  -- The guard is the whole point: of all concurrent callers, only the one
  -- whose update finds finished = 0 changes the row. Row locking makes the
  -- others re-check the condition after the winner commits, so they match
  -- nothing and return false.
  update buildq.builds as b
  set
    finished = 1,
    busy = 0,
    claimed_by = null,
    build_status = v_status,
    start_time = finish_build.start_time,
    stop_time = finish_build.stop_time,
    is_cached_build = finish_build.is_cached,
    size = finish_build.size,
    closure_size = finish_build.closure_size,
    release_name = finish_build.release_name,
    error_msg = finish_build.error_msg,
    finished_by = coalesce(finish_build.finished_by, session_user),
    notification_pending_since = clock_timestamp()
  where
    b.id = finish_build.build_id
    and b.finished = 0
    and (finish_build.attempt is null or b.attempt = finish_build.attempt);

  if found then
    return true;
  end if;

  select b.finished, b.attempt, b.build_status, s.name as status_name
  into v_current
  from buildq.builds as b
  left join buildq.build_statuses as s on b.build_status = s.code
  where b.id = finish_build.build_id;

  if not found then
    raise exception 'build % does not exist', finish_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds; a lost race returns false instead.';
  end if;

  if v_current.finished = 1 then
    raise notice 'build % is already finished as % (status %); nothing changed',
      finish_build.build_id, v_current.status_name, v_current.build_status;
  else
    raise notice 'build % is in attempt %, not attempt %; nothing changed',
      finish_build.build_id, v_current.attempt, finish_build.attempt;
  end if;

  return false;
end;
$$;

comment on function buildq.finish_build(
  bigint, integer, timestamptz, timestamptz, boolean, bigint, bigint, text,
  text, text, integer
) is
'Records the result of an unfinished build and returns true, or returns '
'false and changes nothing when the build is already finished or, if '
'attempt is given, has moved on to another attempt. Clears busy and '
'claimed_by. finished_by defaults to the database user. Raises BQ001 for an '
'unknown id, BQ003 for an unknown status, BQ004 when stop_time < '
'start_time, 22004 for a null argument and 22023 for a negative size or an '
'empty finished_by.';

revoke all on function buildq.finish_build(
  bigint, integer, timestamptz, timestamptz, boolean, bigint, bigint, text,
  text, text, integer
) from public;

select buildq.grant_execute(
  'buildq.finish_build(bigint, integer, timestamptz, timestamptz, boolean, '
  'bigint, bigint, text, text, text, integer)',
  'runner'
);
