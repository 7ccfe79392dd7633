-- Return one finished build to the queue.
create or replace function buildq.restart_build(
  build_id bigint
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if restart_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  -- Checked here as well, so that the error names this function only.
  if not exists (select from buildq.builds as b where b.id = restart_build.build_id) then
    raise exception 'build % does not exist', restart_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds.';
  end if;

  return exists (
    select from buildq.restart_builds(array[restart_build.build_id])
  );
end;
$$;

comment on function buildq.restart_build(bigint) is
'Returns a finished build to the queue as a new attempt (see '
'restart_builds for the columns it clears), so that a late finish from the '
'previous attempt returns false. Returns true when this call restarted the '
'build, false with a notice when it is not finished. Raises BQ001 for an '
'unknown id and 22004 for a null id.';

revoke all on function buildq.restart_build(bigint) from public;

select buildq.grant_execute('buildq.restart_build(bigint)', 'operator');
