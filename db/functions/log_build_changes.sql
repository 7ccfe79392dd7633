-- Record every insert, update and delete of buildq.builds in build_events.
create or replace function buildq.log_build_changes()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into buildq.build_events (
      build_id, event, attempt, new_state, new_values
    )
    select
      n.id,
      'queued',
      n.attempt,
      case
        when n.finished = 1 then ns.name
        when n.busy = 1 then 'running'
        else 'queued'
      end,
      to_jsonb(n)
    from new_rows as n
    left join buildq.build_statuses as ns on n.build_status = ns.code
    order by n.id;

  elsif tg_op = 'DELETE' then
    insert into buildq.build_events (
      build_id, event, attempt, old_state, old_values
    )
    select
      o.id,
      'deleted',
      o.attempt,
      case
        when o.finished = 1 then os.name
        when o.busy = 1 then 'running'
        else 'queued'
      end,
      to_jsonb(o)
    from old_rows as o
    left join buildq.build_statuses as os on o.build_status = os.code
    order by o.id;

  else
    -- A full join pairs the versions of each row. A row whose id was changed
    -- by a direct update has no partner, so its old id gets a 'deleted' event
    -- and its new id a 'snapshot' with the whole row, and replaying either id
    -- stays correct. The first matching transition names the event, and the
    -- changed columns are in old_values and new_values either way.
    insert into buildq.build_events (
      build_id, event, attempt, old_state, new_state, old_values, new_values
    )
    select
      coalesce(n.id, o.id),
      case
        when n.id is null then 'deleted'
        when o.id is null then 'snapshot'
        when o.finished = 0 and n.finished = 1 then
          case n.build_status
            when 3 then 'aborted'
            when 4 then 'cancelled'
            else 'finished'
          end
        when o.finished = 1 and n.finished = 0 then 'restarted'
        when o.busy = 0 and n.busy = 1 then 'claimed'
        when o.busy = 1 and n.busy = 0 then 'released'
        when n.global_priority > o.global_priority then 'bumped'
        when n.last_step_nr > o.last_step_nr then
          case
            when exists (
              select
              from buildq.build_events as e
              where
                e.build_id = n.id
                and e.step_nr is null
                and e.event = 'started'
                and e.attempt = n.attempt
            ) then 'step_allocated'
            else 'started'
          end
        when
          o.notification_pending_since is not null
          and n.notification_pending_since is null
          then 'notification_acked'
        else 'updated'
      end,
      coalesce(n.attempt, o.attempt),
      case
        when o.finished = 1 then os.name
        when o.busy = 1 then 'running'
        when o.id is not null then 'queued'
      end,
      case
        when n.finished = 1 then ns.name
        when n.busy = 1 then 'running'
        when n.id is not null then 'queued'
      end,
      d.old_values,
      d.new_values
    from old_rows as o
    full join new_rows as n on o.id = n.id
    left join buildq.build_statuses as os on o.build_status = os.code
    left join buildq.build_statuses as ns on n.build_status = ns.code
    cross join lateral (
      select
        buildq.changed_fields(to_jsonb(n), to_jsonb(o)) as old_values,
        buildq.changed_fields(to_jsonb(o), to_jsonb(n)) as new_values
    ) as d
    where d.old_values is not null or d.new_values is not null
    order by coalesce(n.id, o.id);
  end if;

  return null;
end;
$$;

comment on function buildq.log_build_changes() is
'Statement-level trigger function on buildq.builds: inserts one row into '
'buildq.build_events for every inserted, deleted or changed build, so that '
'direct updates are recorded as well as those of the functions. An update '
'that changes no column records nothing.';

revoke all on function buildq.log_build_changes() from public;

create or replace trigger builds_log_insert
after insert on buildq.builds
referencing new table as new_rows
for each statement
execute function buildq.log_build_changes();

create or replace trigger builds_log_update
after update on buildq.builds
referencing old table as old_rows new table as new_rows
for each statement
execute function buildq.log_build_changes();

create or replace trigger builds_log_delete
after delete on buildq.builds
referencing old table as old_rows
for each statement
execute function buildq.log_build_changes();

comment on trigger builds_log_insert on buildq.builds is
'Records a queued event per new build in buildq.build_events.';
comment on trigger builds_log_update on buildq.builds is
'Records one event per changed build in buildq.build_events.';
comment on trigger builds_log_delete on buildq.builds is
'Records a deleted event with the whole row per deleted build.';
