-- Mark the finish notification of a build as handled.
create or replace function buildq.ack_build_notification(
  build_id bigint,
  attempt integer default null
)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_current record;
begin
  if ack_build_notification.build_id is null then
    raise exception 'build_id must not be null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass a build_id from buildq.pending_notifications().';
  end if;

  update buildq.builds as b
  set notification_pending_since = null
  where
    b.id = ack_build_notification.build_id
    and b.notification_pending_since is not null
    and (
      ack_build_notification.attempt is null
      or b.attempt = ack_build_notification.attempt
    );

  if found then
    return true;
  end if;

  select b.attempt, b.notification_pending_since
  into v_current
  from buildq.builds as b
  where b.id = ack_build_notification.build_id;

  if not found then
    raise exception 'build % does not exist', ack_build_notification.build_id
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds.';
  end if;

  if v_current.notification_pending_since is null then
    raise notice 'build % has no pending finish notification; nothing changed',
      ack_build_notification.build_id;
  else
    raise notice 'build % has a pending finish notification for attempt %, '
      'not attempt %; nothing changed',
      ack_build_notification.build_id, v_current.attempt,
      ack_build_notification.attempt;
  end if;

  return false;
end;
$$;

comment on function buildq.ack_build_notification(bigint, integer) is
'Clears notification_pending_since of a build once a notifier has handled '
'its finish, and returns true. With attempt given, clears it only while the '
'build is still in that attempt, so that acknowledging an old finish never '
'hides the finish of a later attempt. Returns false with a notice when '
'nothing is pending or the attempt differs. Raises BQ001 for an unknown id '
'and 22004 for a null id.';

revoke all on function buildq.ack_build_notification(bigint, integer)
from public;

select buildq.grant_execute(
  'buildq.ack_build_notification(bigint, integer)', 'runner'
);
