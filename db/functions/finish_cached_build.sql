-- Finish a build as a cached success when the same recipe already succeeded.
create or replace function buildq.finish_cached_build(
  build_id bigint,
  finished_by text default null,
  attempt integer default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_drv_path text;
  v_source record;
begin
  if finish_cached_build.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass the id of a row in buildq.builds.';
  end if;

  select b.drv_path
  into v_drv_path
  from buildq.builds as b
  where b.id = finish_cached_build.build_id;

  if not found then
    raise exception 'build % does not exist', finish_cached_build.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds.';
  end if;

  -- Recipe paths are content-addressed, so a succeeded build with the same
  -- drv_path built exactly this recipe. The newest one supplies the result.
  select s.id, s.size, s.closure_size, s.release_name
  into v_source
  from buildq.builds as s
  where
    s.drv_path = v_drv_path
    and s.id <> finish_cached_build.build_id
    and s.finished = 1
    and s.build_status = 0
  order by s.stop_time desc, s.id desc
  limit 1;

  if not found then
    raise notice 'no succeeded build of % exists; build % is unchanged',
      v_drv_path, finish_cached_build.build_id;
    return null;
  end if;

  return buildq.finish_build(
    build_id => finish_cached_build.build_id,
    status => 0,
    is_cached => true,
    size => v_source.size,
    closure_size => v_source.closure_size,
    release_name => v_source.release_name,
    finished_by => finish_cached_build.finished_by,
    attempt => finish_cached_build.attempt
  );
end;
$$;

comment on function buildq.finish_cached_build(bigint, text, integer) is
'Finishes an unfinished build as succeeded (status 0) with is_cached_build '
'set when another build of the same drv_path has succeeded, copying size, '
'closure_size and release_name from the newest such build. The finish goes '
'through finish_build and its guard. Returns true when this call finished '
'the build, false when the build is already finished or in another attempt, '
'and null, changing nothing, when no succeeded build of the recipe exists. '
'Raises BQ001 for an unknown id and 22004 for a null id.';

revoke all on function buildq.finish_cached_build(bigint, text, integer)
from public;

select buildq.grant_execute(
  'buildq.finish_cached_build(bigint, text, integer)', 'runner'
);
