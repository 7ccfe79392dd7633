-- Finish a build as aborted (status 3) with the reason as its error message.
create or replace function buildq.abort_build(
  build_id bigint,
  reason text,
  finished_by text default null,
  attempt integer default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if abort_build.reason is null or abort_build.reason = '' then
    raise exception 'reason must not be empty (build %)', abort_build.build_id
      using errcode = 'invalid_parameter_value',
        hint = 'Say why, e.g. ''derivation was garbage-collected prior to build''.';
  end if;

  return buildq.finish_build(
    build_id => abort_build.build_id,
    status => 3,
    error_msg => abort_build.reason,
    finished_by => abort_build.finished_by,
    attempt => abort_build.attempt
  );
end;
$$;

comment on function buildq.abort_build(bigint, text, text, integer) is
'Finishes an unfinished build as aborted (status 3) with reason as its '
'error message, through the same guard as finish_build: returns true when '
'this call finished the build, false when it was already finished or in '
'another attempt. Raises BQ001 for an unknown id and 22023 for an empty '
'reason.';

revoke all on function buildq.abort_build(bigint, text, text, integer)
from public;

select buildq.grant_execute('buildq.abort_build(bigint, text, text, integer)', 'runner');
