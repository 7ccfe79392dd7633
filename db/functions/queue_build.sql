-- Add a build to the queue.
create or replace function buildq.queue_build(
  job text,
  system text,
  drv_path text,
  priority integer default 0,
  global_priority integer default 0,
  timeout integer default null,
  max_silent integer default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id bigint;
begin
  if coalesce(queue_build.job, '') = ''
    or coalesce(queue_build.system, '') = ''
    or coalesce(queue_build.drv_path, '') = '' then
    raise exception 'job, system and drv_path must not be empty (got %, %, %)',
      quote_nullable(queue_build.job), quote_nullable(queue_build.system),
      quote_nullable(queue_build.drv_path)
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the job name, a system such as x86_64-linux and the '
          'path of the recipe file.';
  end if;

  if queue_build.priority is null or queue_build.global_priority is null then
    raise exception 'priority and global_priority must not be null (job %)',
      queue_build.job
      using errcode = 'null_value_not_allowed',
        hint = 'Omit them to use 0.';
  end if;

  if queue_build.timeout <= 0 then
    raise exception 'timeout % must be positive (job %)',
      queue_build.timeout, queue_build.job
      using errcode = 'invalid_parameter_value',
        hint = 'Pass seconds greater than 0, or null for the runner default.';
  end if;

  if queue_build.max_silent <= 0 then
    raise exception 'max_silent % must be positive (job %)',
      queue_build.max_silent, queue_build.job
      using errcode = 'invalid_parameter_value',
        hint = 'Pass seconds greater than 0, or null for the runner default.';
  end if;

  insert into buildq.builds as b (
    job, system, drv_path, priority, global_priority, timeout, max_silent
  )
  values (
    queue_build.job,
    queue_build.system,
    queue_build.drv_path,
    queue_build.priority,
    queue_build.global_priority,
    queue_build.timeout,
    queue_build.max_silent
  )
  returning b.id into v_id;

  return v_id;
end;
$$;

comment on function buildq.queue_build(
  text, text, text, integer, integer, integer, integer
) is
'Queues a new build and returns its id. timeout and max_silent are seconds '
'(null: the runner default). Raises 22023 for an empty job, system or '
'drv_path or a non-positive limit, and 22004 for a null priority.';

revoke all on function buildq.queue_build(
  text, text, text, integer, integer, integer, integer
) from public;

select buildq.grant_execute(
  'buildq.queue_build(text, text, text, integer, integer, integer, integer)',
  'runner'
);
