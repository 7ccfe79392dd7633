-- At-least-once finish notifications: pending_notifications and
-- ack_build_notification.
begin;
set local client_min_messages = warning;
select plan(13);

select buildq.queue_build('a', 'x86_64-linux', '/nix/store/a.drv') as finished \gset
select buildq.queue_build('b', 'x86_64-linux', '/nix/store/b.drv') as cancelled \gset
select buildq.queue_build('c', 'x86_64-linux', '/nix/store/c.drv') as queued \gset
select buildq.finish_build(:finished, 0);
select buildq.cancel_build(:cancelled);

select results_eq(
  'select p.build_id from buildq.pending_notifications() as p',
  format('values (%s::bigint), (%s)', :finished, :cancelled),
  'finished and cancelled builds are pending, oldest first'
);
select results_eq(
  format(
    'select p.attempt, p.build_status from buildq.pending_notifications() as p '
    'where p.build_id = %s', :cancelled
  ),
  $$values (0, 4::smallint)$$,
  'pending row carries attempt and status'
);

select is(buildq.ack_build_notification(:finished), true, 'ack returns true');
select is(b.notification_pending_since, null, 'ack clears notification_pending_since')
from buildq.builds as b where b.id = :finished;
select is(buildq.ack_build_notification(:finished), false, 'ack twice returns false');
select is(
  buildq.ack_build_notification(:cancelled, 7), false,
  'ack of another attempt returns false'
);
select isnt(b.notification_pending_since, null, 'ack of another attempt keeps it pending')
from buildq.builds as b where b.id = :cancelled;
select is(
  buildq.ack_build_notification(:cancelled, 0), true,
  'ack of the current attempt returns true'
);
select is(
  buildq.ack_build_notification(:queued), false,
  'ack of an unfinished build returns false'
);
select throws_ok(
  'select buildq.ack_build_notification(-1)', 'BQ001', 'build -1 does not exist',
  'ack unknown id raises BQ001'
);
select throws_ok(
  'select buildq.ack_build_notification(null)', '22004', null,
  'ack null id raises 22004'
);

select buildq.finish_build(:queued, 1);
select buildq.restart_build(:queued);
select is_empty(
  'select * from buildq.pending_notifications()',
  'restart clears the pending notification'
);
select buildq.abort_build(:queued, 'recipe was garbage-collected');
select results_eq(
  'select p.build_id from buildq.pending_notifications() as p',
  format('values (%s::bigint)', :queued),
  'abort marks the finish pending'
);

select * from finish();
rollback;
