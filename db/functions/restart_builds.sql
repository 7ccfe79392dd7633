-- Return many finished builds to the queue at once.
create or replace function buildq.restart_builds(
  build_ids bigint[]
)
returns setof bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restarted bigint[];
  v_skipped record;
  v_skipped_count integer := 0;
begin
  perform buildq.check_build_ids(restart_builds.build_ids);

  if cardinality(restart_builds.build_ids) = 0 then
    raise notice 'no build ids given; nothing changed';
    return;
  end if;

  -- Locked in id order as in cancel_builds. The new attempt makes a late
  -- finish that names the previous attempt return false.
  with locked as (
    select b.id
    from buildq.builds as b
    where b.id = any(restart_builds.build_ids) and b.finished = 1
    order by b.id
    for update
  ),

  restarted as (
    update buildq.builds as b
    set
      finished = 0,
      busy = 0,
      claimed_by = null,
      claimed_at = null,
      build_status = null,
      start_time = null,
      stop_time = null,
      is_cached_build = false,
      error_msg = null,
      size = null,
      closure_size = null,
      release_name = null,
      finished_by = null,
      notification_pending_since = null,
      attempt = b.attempt + 1
    from locked
    where b.id = locked.id
    returning b.id
  )

  select coalesce(array_agg(r.id order by r.id), '{}')
  into v_restarted
  from restarted as r;

  return query select unnest(v_restarted);

  for v_skipped in
    select
      i.id,
      b.finished,
      b.busy,
      b.claimed_by
    from (select distinct unnest(restart_builds.build_ids) as id) as i
    left join buildq.builds as b on i.id = b.id
    where i.id <> all(v_restarted)
    order by i.id
  loop
    v_skipped_count := v_skipped_count + 1;
    continue when v_skipped_count > 20;

    if v_skipped.finished is null then
      raise notice 'build % was deleted meanwhile; not restarted', v_skipped.id;
    elsif v_skipped.busy = 1 then
      raise notice 'build % is not finished (running on runner %); not restarted',
        v_skipped.id, v_skipped.claimed_by;
    else
      raise notice 'build % is not finished (queued); not restarted', v_skipped.id;
    end if;
  end loop;

  if v_skipped_count > 20 then
    raise notice '% more builds are not finished; not restarted',
      v_skipped_count - 20;
  end if;
end;
$$;

comment on function buildq.restart_builds(bigint[]) is
'Returns every finished build of build_ids to the queue and returns the ids '
'it restarted: finished = 0, attempt + 1, and status, times, cached flag, '
'sizes, release name, error, finished_by, claim and pending notification '
'cleared. Unfinished builds are skipped with a notice and never undo the '
'others. Raises BQ001 naming unknown ids and 22004 for a null list or '
'element, changing nothing. Example: all failed builds of a job: select * '
'from buildq.restart_builds(array(select id from buildq.builds where job = '
'''hello'' and build_status = 1));';

revoke all on function buildq.restart_builds(bigint[]) from public;

select buildq.grant_execute('buildq.restart_builds(bigint[])', 'operator');
