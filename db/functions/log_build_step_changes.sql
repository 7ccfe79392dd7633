-- Record every insert, update and delete of buildq.build_steps in build_events.
create or replace function buildq.log_build_step_changes()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    -- A step may be inserted already done (busy = 0), e.g. a cached failure.
    -- Such a step is recorded as finished, so that step_finished is notified.
    insert into buildq.build_events (
      build_id, step_nr, event, attempt, new_state, new_values
    )
    select
      n.build_id,
      n.step_nr,
      case when n.busy <> 0 then 'step_started' else 'step_finished' end,
      coalesce(n.attempt, b.attempt),
      case when n.busy <> 0 then 'busy' else ns.name end,
      to_jsonb(n)
    from new_rows as n
    left join buildq.builds as b on n.build_id = b.id
    left join buildq.build_statuses as ns on n.status = ns.code
    order by n.build_id, n.step_nr;

  elsif tg_op = 'DELETE' then
    -- When a deleted build takes its steps along, the build row is already
    -- gone, so attempt falls back to null for steps without their own.
    insert into buildq.build_events (
      build_id, step_nr, event, attempt, old_state, old_values
    )
    select
      o.build_id,
      o.step_nr,
      'step_deleted',
      coalesce(o.attempt, b.attempt),
      case when o.busy <> 0 then 'busy' else os.name end,
      to_jsonb(o)
    from old_rows as o
    left join buildq.builds as b on o.build_id = b.id
    left join buildq.build_statuses as os on o.status = os.code
    order by o.build_id, o.step_nr;

  else
    -- As for builds: a step whose key was changed by a direct update gets a
    -- step_deleted event under its old key and a snapshot under its new key.
    insert into buildq.build_events (
      build_id, step_nr, event, attempt, old_state, new_state, old_values,
      new_values
    )
    select
      coalesce(n.build_id, o.build_id),
      coalesce(n.step_nr, o.step_nr),
      case
        when n.build_id is null then 'step_deleted'
        when o.build_id is null then 'snapshot'
        when o.busy <> 0 and n.busy = 0 then 'step_finished'
        else 'step_updated'
      end,
      coalesce(n.attempt, o.attempt, b.attempt),
      case
        when o.busy <> 0 then 'busy'
        when o.build_id is not null then os.name
      end,
      case
        when n.busy <> 0 then 'busy'
        when n.build_id is not null then ns.name
      end,
      d.old_values,
      d.new_values
    from old_rows as o
    full join new_rows as n
      on o.build_id = n.build_id and o.step_nr = n.step_nr
    left join buildq.builds as b on coalesce(n.build_id, o.build_id) = b.id
    left join buildq.build_statuses as os on o.status = os.code
    left join buildq.build_statuses as ns on n.status = ns.code
    cross join lateral (
      select
        buildq.changed_fields(to_jsonb(n), to_jsonb(o)) as old_values,
        buildq.changed_fields(to_jsonb(o), to_jsonb(n)) as new_values
    ) as d
    where d.old_values is not null or d.new_values is not null
    order by coalesce(n.build_id, o.build_id), coalesce(n.step_nr, o.step_nr);
  end if;

  return null;
end;
$$;

comment on function buildq.log_build_step_changes() is
'Statement-level trigger function on buildq.build_steps: inserts one row '
'into buildq.build_events for every inserted, deleted or changed step, '
'including direct updates. An update that changes no column records nothing.';

revoke all on function buildq.log_build_step_changes() from public;

create or replace trigger build_steps_log_insert
after insert on buildq.build_steps
referencing new table as new_rows
for each statement
execute function buildq.log_build_step_changes();

create or replace trigger build_steps_log_update
after update on buildq.build_steps
referencing old table as old_rows new table as new_rows
for each statement
execute function buildq.log_build_step_changes();

create or replace trigger build_steps_log_delete
after delete on buildq.build_steps
referencing old table as old_rows
for each statement
execute function buildq.log_build_step_changes();

comment on trigger build_steps_log_insert on buildq.build_steps is
'Records a step_started (or, for a step inserted done, step_finished) event '
'per new step in buildq.build_events.';
comment on trigger build_steps_log_update on buildq.build_steps is
'Records one event per changed step in buildq.build_events.';
comment on trigger build_steps_log_delete on buildq.build_steps is
'Records a step_deleted event with the whole row per deleted step.';
