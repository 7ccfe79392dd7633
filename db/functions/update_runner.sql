-- Store the heartbeat and counters of a running runner process.
create or replace function buildq.update_runner(
  runner text,
  counters jsonb,
  stopped boolean default false
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_invalid record;
begin
  if coalesce(update_runner.runner, '') = '' then
    raise exception 'runner must not be empty'
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the runner id given to register_runner.';
  end if;

  if update_runner.counters is null
    or jsonb_typeof(update_runner.counters) <> 'object' then
    raise exception 'counters must be a JSON object, got % (runner %)',
      coalesce(jsonb_typeof(update_runner.counters), 'null'), update_runner.runner
      using errcode = 'invalid_parameter_value',
        hint = 'Pass an object such as {"nr_builds_done": 3}.';
  end if;

  select c.key, c.value
  into v_invalid
  from jsonb_each(update_runner.counters) as c
  where
    not case
      when jsonb_typeof(c.value) = 'number' then c.value::numeric % 1 = 0
      else false
    end
  order by c.key
  limit 1;

  if found then
    raise exception 'counter % must be an integer, got % (runner %)',
      v_invalid.key, v_invalid.value, update_runner.runner
      using errcode = 'invalid_parameter_value',
        hint = 'Pass whole numbers as counter values, e.g. {"nr_builds_done": 3}.';
  end if;

  if update_runner.stopped is null then
    raise exception 'stopped must not be null (runner %)', update_runner.runner
      using errcode = 'null_value_not_allowed',
        hint = 'Pass true for the last update of a process, or omit it.';
  end if;

  update buildq.runners as r
  set
    heartbeat_at = greatest(clock_timestamp(), r.started_at),
    counters = update_runner.counters,
    stopped_at = case
      when update_runner.stopped then greatest(clock_timestamp(), r.started_at)
      else r.stopped_at
    end
  where r.id = update_runner.runner;

  if found then
    return true;
  end if;

  raise notice 'runner % is not registered; nothing changed', update_runner.runner;
  return false;
end;
$$;

comment on function buildq.update_runner(text, jsonb, boolean) is
'Sets heartbeat_at to now and replaces the counters of a registered runner; '
'with stopped => true also sets stopped_at. Returns true, or false and '
'changes nothing when no row has this runner id (call register_runner '
'first). Raises 22023 for an empty runner id or counters that are not a JSON '
'object of integers and 22004 for a null stopped.';

revoke all on function buildq.update_runner(text, jsonb, boolean) from public;

select buildq.grant_execute('buildq.update_runner(text, jsonb, boolean)', 'runner');
