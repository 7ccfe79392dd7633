-- Send the notifications for the events of one statement.
create or replace function buildq.notify_build_events()
returns trigger
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_notification record;
begin
  -- Each payload lists at most 200 items. An item has at most 30 bytes: 19
  -- digits of a bigint build id, a colon and 10 digits of a step number.
  -- With the commas a payload stays under 6,200 bytes, below the NOTIFY
  -- limit of 8,000 bytes.
  for v_notification in
    with channels (event, channel) as (
      values
      ('queued', 'builds_added'),
      ('started', 'build_started'),
      ('finished', 'build_finished'),
      ('aborted', 'build_finished'),
      ('cancelled', 'build_finished'),
      ('cancelled', 'builds_cancelled'),
      ('restarted', 'builds_restarted'),
      ('bumped', 'builds_bumped'),
      ('step_started', 'step_started'),
      ('step_finished', 'step_finished')
    ),

    items as (
      select
        c.channel,
        case
          when e.step_nr is null then e.build_id::text
          else e.build_id::text || ':' || e.step_nr::text
        end as item,
        row_number() over (
          partition by c.channel order by e.build_id, e.step_nr
        ) as item_nr
      from new_events as e
      inner join channels as c on e.event = c.event
    )

    select
      i.channel,
      string_agg(i.item, ',' order by i.item_nr) as payload
    from items as i
    group by i.channel, (i.item_nr - 1) / 200
    order by i.channel, min(i.item_nr)
  loop
    perform pg_notify(v_notification.channel, v_notification.payload);
  end loop;

  return null;
end;
$$;

comment on function buildq.notify_build_events() is
'Statement-level trigger function on buildq.build_events: sends one NOTIFY '
'per channel and 200 items for the events that one statement inserted. '
'Channels: builds_added, build_started, build_finished (finished, aborted '
'and cancelled), builds_cancelled, builds_restarted, builds_bumped (payload: '
'build ids, comma-separated, ascending) and step_started, step_finished '
'(payload: build_id:step_nr items, comma-separated). Notifications are '
'delivered at commit, and not at all after a rollback.';

revoke all on function buildq.notify_build_events() from public;

create or replace trigger build_events_notify
after insert on buildq.build_events
referencing new table as new_events
for each statement
execute function buildq.notify_build_events();

comment on trigger build_events_notify on buildq.build_events is
'Sends the NOTIFYs for the events one statement inserted.';
