-- Start a new step of a build and allocate its step number.
create or replace function buildq.create_build_step(
  build_id bigint,
  drv_path text default null,
  type integer default 0,
  system text default null,
  machine text default '',
  runner text default null,
  attempt integer default null,
  start_time timestamptz default now()
)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_allocated record;
  v_existing record;
begin
  if create_build_step.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  if create_build_step.type is null or create_build_step.type not in (0, 1) then
    raise exception 'step type % is invalid (build %)',
      quote_nullable(create_build_step.type), create_build_step.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Pass 0 for a build step or 1 for a substitution.';
  end if;

  if create_build_step.start_time is null or create_build_step.machine is null then
    raise exception 'start_time and machine must not be null (build %)',
      create_build_step.build_id
      using errcode = 'null_value_not_allowed',
        hint = 'Omit them to use the current time and an empty machine name.';
  end if;

  -- clear_busy rejects an empty runner id, so a step recorded with one
  -- could never be cleared after a crash.
  if create_build_step.drv_path = '' or create_build_step.system = ''
    or create_build_step.runner = '' then
    raise exception 'drv_path, system and runner must not be empty (build %, got %, %, %)',
      create_build_step.build_id, quote_nullable(create_build_step.drv_path),
      quote_nullable(create_build_step.system),
      quote_nullable(create_build_step.runner)
      using errcode = 'invalid_parameter_value',
        hint = 'Omit drv_path and system to use the build''s, and runner to use '
          'the runner that claimed the build.';
  end if;

  -- Incrementing the counter takes the build's row lock, so concurrent
  -- callers get consecutive numbers without ever meeting a unique violation.
  update buildq.builds as b
  set last_step_nr = b.last_step_nr + 1
  where
    b.id = create_build_step.build_id
    and b.finished = 0
    and (create_build_step.attempt is null or b.attempt = create_build_step.attempt)
  returning b.last_step_nr, b.drv_path, b.system, b.attempt, b.claimed_by
  into v_allocated;

  if not found then
    select b.finished, b.attempt
    into v_existing
    from buildq.builds as b
    where b.id = create_build_step.build_id;

    if not found then
      raise exception 'build % does not exist', create_build_step.build_id
        using errcode = 'BQ001',
          hint = 'Check the id in buildq.builds.';
    end if;

    if v_existing.finished = 1 then
      raise notice 'build % is already finished; no step created',
        create_build_step.build_id;
    else
      raise notice 'build % is in attempt %, not attempt %; no step created',
        create_build_step.build_id, v_existing.attempt, create_build_step.attempt;
    end if;

    return null;
  end if;

  insert into buildq.build_steps (
    build_id, step_nr, type, drv_path, busy, start_time, machine, system,
    runner, attempt
  )
  values (
    create_build_step.build_id,
    v_allocated.last_step_nr,
    create_build_step.type,
    coalesce(create_build_step.drv_path, v_allocated.drv_path),
    1,
    create_build_step.start_time,
    create_build_step.machine,
    coalesce(create_build_step.system, v_allocated.system),
    coalesce(create_build_step.runner, v_allocated.claimed_by),
    v_allocated.attempt
  );

  return v_allocated.last_step_nr;
end;
$$;

comment on function buildq.create_build_step(
  bigint, text, integer, text, text, text, integer, timestamptz
) is
'Creates a busy step (busy = 1) for an unfinished build and returns its '
'step number, 1 for the first step. Concurrent calls for one build get '
'distinct consecutive numbers. Returns null, creating nothing, when the '
'build is already finished or, if attempt is given, in another attempt. '
'drv_path and system default to the build''s, runner to the runner that '
'claimed the build, so that its clear_busy aborts the step after a crash. '
'Raises BQ001 for an unknown build and 22023 for a step type other than 0 '
'or 1 or an empty drv_path, system or runner.';

revoke all on function buildq.create_build_step(
  bigint, text, integer, text, text, text, integer, timestamptz
) from public;

select buildq.grant_execute(
  'buildq.create_build_step(bigint, text, integer, text, text, text, integer, timestamptz)',
  'runner'
);
