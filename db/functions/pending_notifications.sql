-- List the finishes that a notifier has not acknowledged yet.
create or replace function buildq.pending_notifications()
returns table (
  build_id bigint,
  attempt integer,
  build_status smallint,
  pending_since timestamptz
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select
    b.id,
    b.attempt,
    b.build_status,
    b.notification_pending_since
  from buildq.builds as b
  where b.notification_pending_since is not null
  order by b.notification_pending_since, b.id
$$;

comment on function buildq.pending_notifications() is
'Returns the builds whose finish no notifier has acknowledged, oldest first. '
'A notifier first listens on build_finished, then handles these rows and '
'acknowledges each with ack_build_notification(build_id, attempt), so that '
'every finish is handled at least once, also across its own restarts.';

revoke all on function buildq.pending_notifications() from public;

select buildq.grant_execute('buildq.pending_notifications()', 'runner');
