-- Take over the runners row of a runner id at the start of a process.
create or replace function buildq.register_runner(
  runner text,
  host text default null,
  pid integer default null
)
returns timestamptz
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_previous record;
  v_had_previous boolean;
  v_now timestamptz := clock_timestamp();
begin
  if coalesce(register_runner.runner, '') = '' then
    raise exception 'runner must not be empty'
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the runner id that the process uses with claim_builds.';
  end if;

  if register_runner.pid <= 0 then
    raise exception 'pid % must be positive (runner %)',
      register_runner.pid, register_runner.runner
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the process id of the runner, or null when unknown.';
  end if;

  -- The row lock makes a concurrent registration of the same id wait, so
  -- each caller reads the state that the other one left.
  select r.heartbeat_at, r.stopped_at
  into v_previous
  from buildq.runners as r
  where r.id = register_runner.runner
  for update;

  v_had_previous := found;

  insert into buildq.runners as r (
    id, host, pid, started_at, heartbeat_at, stopped_at, counters
  )
  values (
    register_runner.runner,
    register_runner.host,
    register_runner.pid,
    v_now,
    v_now,
    null,
    '{}'
  )
  on conflict (id) do update
  set
    host = excluded.host,
    pid = excluded.pid,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at,
    stopped_at = null,
    counters = '{}';

  if v_had_previous and v_previous.stopped_at is null then
    return v_previous.heartbeat_at;
  end if;

  return null;
end;
$$;

comment on function buildq.register_runner(text, text, integer) is
'Creates or takes over the runners row of a runner id for a starting '
'process: sets host, pid, started_at and heartbeat_at, clears stopped_at and '
'resets the counters to {}. Returns the last heartbeat of the previous '
'process with this id when that process never recorded a stop (it crashed, '
'or it is still running), else null. Raises 22023 for an empty runner id or '
'a pid that is not positive.';

revoke all on function buildq.register_runner(text, text, integer) from public;

select buildq.grant_execute('buildq.register_runner(text, text, integer)', 'runner');
