-- Cancel many unfinished builds at once.
create or replace function buildq.cancel_builds(
  build_ids bigint[],
  reason text default null
)
returns setof bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_cancelled bigint[];
  v_skipped record;
  v_skipped_count integer := 0;
begin
  perform buildq.check_build_ids(cancel_builds.build_ids);

  if cardinality(cancel_builds.build_ids) = 0 then
    raise notice 'no build ids given; nothing changed';
    return;
  end if;

  -- Rows are locked in id order, so that concurrent set-based calls wait for
  -- each other instead of deadlocking. A build that someone else finished
  -- meanwhile drops out, because for update re-checks finished = 0 on the
  -- newest row version, and the others are still cancelled. A running build
  -- keeps its claim time as start_time.
  with locked as (
    select b.id
    from buildq.builds as b
    where b.id = any(cancel_builds.build_ids) and b.finished = 0
    order by b.id
    for update
  ),

  cancelled as (
    update buildq.builds as b
    set
      finished = 1,
      busy = 0,
      claimed_by = null,
      build_status = 4,
      start_time = case when b.busy = 1 then least(b.claimed_at, v_now) else v_now end,
      stop_time = v_now,
      is_cached_build = false,
      error_msg = cancel_builds.reason,
      finished_by = session_user,
      notification_pending_since = v_now
    from locked
    where b.id = locked.id
    returning b.id
  )

  select coalesce(array_agg(c.id order by c.id), '{}')
  into v_cancelled
  from cancelled as c;

  return query select unnest(v_cancelled);

  for v_skipped in
    select
      i.id,
      b.build_status,
      s.name as status_name
    from (select distinct unnest(cancel_builds.build_ids) as id) as i
    left join buildq.builds as b on i.id = b.id
    left join buildq.build_statuses as s on b.build_status = s.code
    where i.id <> all(v_cancelled)
    order by i.id
  loop
    v_skipped_count := v_skipped_count + 1;
    continue when v_skipped_count > 20;

    if v_skipped.build_status is null then
      raise notice 'build % was deleted meanwhile; not cancelled', v_skipped.id;
    else
      raise notice 'build % is already finished as % (status %); not cancelled',
        v_skipped.id, v_skipped.status_name, v_skipped.build_status;
    end if;
  end loop;

  if v_skipped_count > 20 then
    raise notice '% more builds are already finished; not cancelled',
      v_skipped_count - 20;
  end if;
end;
$$;

comment on function buildq.cancel_builds(bigint[], text) is
'Cancels every unfinished build of build_ids (status 4, finished_by the '
'database user, error_msg the reason) and returns the ids it cancelled. '
'Builds that are already finished, also by a concurrent caller, are skipped '
'with a notice and never undo the others. Raises BQ001 naming unknown ids '
'and 22004 for a null list or element, changing nothing.';

revoke all on function buildq.cancel_builds(bigint[], text) from public;

select buildq.grant_execute('buildq.cancel_builds(bigint[], text)', 'operator');
