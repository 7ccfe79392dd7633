-- Return one build that a runner claimed but cannot finish to the queue.
create or replace function buildq.release_build(
  build_id bigint,
  runner text,
  attempt integer default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_attempt integer;
  v_current record;
begin
  if release_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  if coalesce(release_build.runner, '') = '' then
    raise exception 'runner must not be empty (build %)', release_build.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the runner id that was used with claim_builds.';
  end if;

  -- clear_busy locks a runner's busy steps before its builds. Taking the
  -- locks in the same order keeps the two from deadlocking on one build.
  perform st.step_nr
  from buildq.build_steps as st
  where
    st.build_id = release_build.build_id
    and st.busy <> 0
    and st.runner = release_build.runner
  order by st.step_nr
  for no key update;

  -- The guard matches only while this runner holds the claim of that attempt,
  -- so a release never touches a finished build or another runner's claim.
  -- The attempt keeps its value: a late finish that names it still lands
  -- until the next claim.
  update buildq.builds as b
  set
    busy = 0,
    claimed_by = null,
    claimed_at = null
  where
    b.id = release_build.build_id
    and b.finished = 0
    and b.busy = 1
    and b.claimed_by = release_build.runner
    and (release_build.attempt is null or b.attempt = release_build.attempt)
  returning b.attempt
  into v_attempt;

  if found then
    -- A step that this runner left busy in the released attempt will never
    -- be finished by it, so it ends as aborted, as clear_busy would end it.
    update buildq.build_steps as st
    set
      busy = 0,
      status = 3,
      stop_time = greatest(clock_timestamp(), st.start_time),
      error_msg = 'runner ' || release_build.runner
      || ' released the build while the step was busy'
    where
      st.build_id = release_build.build_id
      and st.busy <> 0
      and st.runner = release_build.runner
      and st.attempt = v_attempt;

    return true;
  end if;

  select b.finished, b.busy, b.claimed_by, b.attempt
  into v_current
  from buildq.builds as b
  where b.id = release_build.build_id;

  if not found then
    raise exception 'build % does not exist', release_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds; a lost race returns false instead.';
  end if;

  if v_current.finished = 1 then
    raise notice 'build % is already finished; nothing released',
      release_build.build_id;
  elsif v_current.busy = 0 then
    raise notice 'build % is not claimed; nothing released',
      release_build.build_id;
  elsif v_current.claimed_by is distinct from release_build.runner then
    raise notice 'build % is claimed by runner %, not %; nothing released',
      release_build.build_id, v_current.claimed_by, release_build.runner;
  else
    raise notice 'build % is in attempt %, not attempt %; nothing released',
      release_build.build_id, v_current.attempt, release_build.attempt;
  end if;

  return false;
end;
$$;

comment on function buildq.release_build(bigint, text, integer) is
'Returns a build that runner claimed to the queue (busy = 0, claimed_by and '
'claimed_at null; attempt keeps its value) and marks the steps that runner '
'left busy in that attempt as aborted (status 3). For a runner that cannot '
'record a build''s result, or that lost the answer of claim_builds. Returns '
'true when this call released the build, and false, changing nothing, when '
'the build is finished, not claimed, claimed by another runner or, if '
'attempt is given, in another attempt. Raises BQ001 for an unknown id, 22004 '
'for a null id and 22023 for an empty or null runner.';

revoke all on function buildq.release_build(bigint, text, integer) from public;

select buildq.grant_execute('buildq.release_build(bigint, text, integer)', 'runner');
