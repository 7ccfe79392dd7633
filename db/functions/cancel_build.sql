-- Cancel one unfinished build.
create or replace function buildq.cancel_build(
  build_id bigint,
  reason text default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if cancel_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  -- Checked here as well, so that the error names this function only.
  if not exists (select from buildq.builds as b where b.id = cancel_build.build_id) then
    raise exception 'build % does not exist', cancel_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds.';
  end if;

  return exists (
    select
    from buildq.cancel_builds(array[cancel_build.build_id], cancel_build.reason)
  );
end;
$$;

comment on function buildq.cancel_build(bigint, text) is
'Cancels an unfinished build, queued or running: sets status 4, clears the '
'claim and marks the finish notification pending. The runner building it '
'learns of it from NOTIFY builds_cancelled, and its own finish then returns '
'false. Returns true when this call cancelled the build, false with a '
'notice when it was already finished. Raises BQ001 for an unknown id and '
'22004 for a null id.';

revoke all on function buildq.cancel_build(bigint, text) from public;

select buildq.grant_execute('buildq.cancel_build(bigint, text)', 'operator');
