-- Record the result of a busy step. The guarded update lets exactly one of
-- several concurrent callers win, and the others get false.
create or replace function buildq.finish_build_step(
  build_id bigint,
  step_nr integer,
  status integer,
  error_msg text default null,
  stop_time timestamptz default now(),
  machine text default null,
  overhead integer default null,
  times_built integer default null,
  is_non_deterministic boolean default null,
  propagated_from bigint default null
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
  if finish_build_step.build_id is null or finish_build_step.step_nr is null then
    raise exception 'build_id and step_nr must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the key of a row in buildq.build_steps.';
  end if;

  v_status := buildq.check_status_code(finish_build_step.status, true);

  if finish_build_step.stop_time is null then
    raise exception 'stop_time must not be null (build %, step %)',
      finish_build_step.build_id, finish_build_step.step_nr
      using errcode = 'null_value_not_allowed',
        hint = 'Omit it to use the current time.';
  end if;

  if finish_build_step.overhead < 0 then
    raise exception 'overhead % must not be negative (build %, step %)',
      finish_build_step.overhead, finish_build_step.build_id,
      finish_build_step.step_nr
      using errcode = 'invalid_parameter_value',
        hint = 'Pass milliseconds of 0 or more, or null when unknown.';
  end if;

  if finish_build_step.times_built < 0 then
    raise exception 'times_built % must not be negative (build %, step %)',
      finish_build_step.times_built, finish_build_step.build_id,
      finish_build_step.step_nr
      using errcode = 'invalid_parameter_value',
        hint = 'Pass a count of 0 or more, or null when unknown.';
  end if;

  if finish_build_step.propagated_from is not null
    and not exists (
      select from buildq.builds as b
      where b.id = finish_build_step.propagated_from
    ) then
    raise exception 'propagated_from build % does not exist (build %, step %)',
      finish_build_step.propagated_from, finish_build_step.build_id,
      finish_build_step.step_nr
      using errcode = 'BQ001',
        hint = 'Pass the id of the build whose failure this step repeats, or null.';
  end if;

  select st.busy, st.start_time, st.status
  into v_current
  from buildq.build_steps as st
  where
    st.build_id = finish_build_step.build_id
    and st.step_nr = finish_build_step.step_nr;

  if not found then
    raise exception 'step % of build % does not exist',
      finish_build_step.step_nr, finish_build_step.build_id
      using errcode = 'BQ002',
        hint = 'Check the key in buildq.build_steps; create_build_step returns it.';
  end if;

  -- start_time never changes after insert, so this read is safe to use for
  -- validation; the update below still carries the busy guard.
  if finish_build_step.stop_time < v_current.start_time then
    raise exception 'stop_time % is before the step''s start_time % (build %, step %)',
      finish_build_step.stop_time, v_current.start_time,
      finish_build_step.build_id, finish_build_step.step_nr
      using errcode = 'BQ004',
        hint = 'Pass a stop_time at or after the start_time.';
  end if;

  update buildq.build_steps as st
  set
    busy = 0,
    status = v_status,
    error_msg = finish_build_step.error_msg,
    stop_time = finish_build_step.stop_time,
    machine = coalesce(finish_build_step.machine, st.machine),
    overhead = finish_build_step.overhead,
    times_built = finish_build_step.times_built,
    is_non_deterministic = finish_build_step.is_non_deterministic,
    propagated_from = finish_build_step.propagated_from
  where
    st.build_id = finish_build_step.build_id
    and st.step_nr = finish_build_step.step_nr
    and st.busy <> 0;

  if found then
    return true;
  end if;

  select st.status, s.name as status_name
  into v_current
  from buildq.build_steps as st
  left join buildq.build_statuses as s on st.status = s.code
  where
    st.build_id = finish_build_step.build_id
    and st.step_nr = finish_build_step.step_nr;

  raise notice 'step % of build % is already finished as % (status %); nothing changed',
    finish_build_step.step_nr, finish_build_step.build_id,
    v_current.status_name, v_current.status;

  return false;
end;
$$;

comment on function buildq.finish_build_step(
  bigint, integer, integer, text, timestamptz, text, integer, integer,
  boolean, bigint
) is
'Records the result of a busy step and returns true, or returns false and '
'changes nothing when the step is already done (busy = 0). Raises BQ002 '
'for an unknown step, BQ001 for an unknown propagated_from build, BQ003 '
'for an unknown status or one that applies to builds only, BQ004 when '
'stop_time is before the step''s start_time, 22004 for a null key and '
'22023 for a negative overhead or times_built.';

revoke all on function buildq.finish_build_step(
  bigint, integer, integer, text, timestamptz, text, integer, integer,
  boolean, bigint
) from public;

select buildq.grant_execute(
  'buildq.finish_build_step(bigint, integer, integer, text, timestamptz, text, '
  'integer, integer, boolean, bigint)',
  'runner'
);
