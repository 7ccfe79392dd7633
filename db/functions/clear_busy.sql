-- Recover after a runner crash: abort its busy steps and requeue its builds.
create or replace function buildq.clear_busy(
  runner text
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_steps integer;
  v_builds integer;
begin
  if coalesce(clear_busy.runner, '') = '' then
    raise exception 'runner must not be empty'
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the runner id that was used with claim_builds.';
  end if;

  update buildq.build_steps as st
  set
    busy = 0,
    status = 3,
    stop_time = greatest(clock_timestamp(), st.start_time),
    error_msg = 'runner ' || clear_busy.runner || ' restarted while the step was busy'
  where
    st.busy <> 0
    and st.runner = clear_busy.runner;

  get diagnostics v_steps = row_count;

  -- Rows are locked in id order, as cancel_builds and restart_builds lock
  -- theirs, so that an operator cancelling these builds meanwhile makes one
  -- call wait for the other instead of deadlocking. The lock mode is the one
  -- the update takes, so a concurrent step insert can still check its key.
  with locked as (
    select q.id
    from buildq.builds as q
    where
      q.busy = 1
      and q.claimed_by = clear_busy.runner
    order by q.id
    for no key update
  )

  update buildq.builds as b
  set
    busy = 0,
    claimed_by = null,
    claimed_at = null
  from locked
  where b.id = locked.id;

  get diagnostics v_builds = row_count;

  return v_steps + v_builds;
end;
$$;

comment on function buildq.clear_busy(text) is
'For a runner starting after a crash: marks the busy steps it owned as '
'aborted (status 3) and returns the builds it had claimed to the queue '
'(busy = 0, claimed_by null; attempt keeps its value, so a late finish '
'that names the old attempt still lands only until the next claim). '
'Returns the number of steps and builds changed.';

revoke all on function buildq.clear_busy(text) from public;

select buildq.grant_execute('buildq.clear_busy(text)', 'runner');
