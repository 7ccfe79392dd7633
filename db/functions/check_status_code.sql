-- Validate a result code against buildq.build_statuses.
create or replace function buildq.check_status_code(
  status integer,
  for_step boolean
)
returns smallint
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_known buildq.build_statuses%rowtype;
begin
  if check_status_code.status is null then
    raise exception 'status must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass a code from buildq.build_statuses, e.g. 0 for succeeded.';
  end if;

  select s.*
  into v_known
  from buildq.build_statuses as s
  where s.code = check_status_code.status;

  if not found then
    raise exception 'status % is not a known status code', check_status_code.status
      using errcode = 'BQ003',
        hint = 'Pick a code from: select code, name from buildq.build_statuses;';
  end if;

  if check_status_code.for_step and not v_known.applies_to_steps then
    raise exception 'status % (%) applies to builds only, not to steps',
      v_known.code, v_known.name
      using errcode = 'BQ003',
        hint = 'Record a dependency failure on the build, not on a step.';
  end if;

  if not check_status_code.for_step and not v_known.applies_to_builds then
    raise exception 'status % (%) applies to steps only, not to builds',
      v_known.code, v_known.name
      using errcode = 'BQ003',
        hint = 'For a build served from a cache pass is_cached => true '
          'with the cached status instead.';
  end if;

  return v_known.code;
end;
$$;

comment on function buildq.check_status_code(integer, boolean) is
'Internal helper: returns the status as smallint, or raises BQ003 when the '
'code is unknown or does not apply to builds (for_step = false) or steps '
'(for_step = true). Raises 22004 for a null status.';

revoke all on function buildq.check_status_code(integer, boolean) from public;
