-- Cancelling builds: cancel_build and cancel_builds.
begin;
set local client_min_messages = warning;
select plan(27);

select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a-hello.drv') as queued \gset
select buildq.queue_build('world', 'x86_64-linux', '/nix/store/b-world.drv') as running \gset
select buildq.queue_build('done', 'x86_64-linux', '/nix/store/c-done.drv') as done \gset
select buildq.bump_build(:running);
select attempt as running_attempt from buildq.claim_builds('runner-1') \gset
select claimed_at as running_claimed_at from buildq.builds where id = :running \gset
select buildq.finish_build(:done, 0);

-- A queued build.
select is(buildq.cancel_build(:queued, 'not needed'), true, 'cancel queued returns true');
select is(b.finished, 1, 'cancelled build is finished')
from buildq.builds as b where b.id = :queued;
select is(b.build_status, 4::smallint, 'cancelled build has status 4')
from buildq.builds as b where b.id = :queued;
select is(b.finished_by, session_user::text, 'finished_by is the database user')
from buildq.builds as b where b.id = :queued;
select is(b.error_msg, 'not needed', 'error_msg is the reason')
from buildq.builds as b where b.id = :queued;
select is(b.start_time, b.stop_time, 'queued build gets no run time')
from buildq.builds as b where b.id = :queued;
select isnt(b.notification_pending_since, null, 'finish notification is pending')
from buildq.builds as b where b.id = :queued;

-- A running build.
select is(buildq.cancel_build(:running), true, 'cancel running returns true');
select is(b.busy, 0, 'cancelled running build is not busy')
from buildq.builds as b where b.id = :running;
select is(b.claimed_by, null, 'cancelled running build has no claim')
from buildq.builds as b where b.id = :running;
select is(b.start_time, :'running_claimed_at'::timestamptz, 'start_time is the claim time')
from buildq.builds as b where b.id = :running;
select is(
  buildq.finish_build(:running, 0, attempt => :running_attempt),
  false,
  'runner finish after cancel returns false'
);
select is(b.build_status, 4::smallint, 'runner finish leaves the cancel in place')
from buildq.builds as b where b.id = :running;

-- Finished builds and bad input.
select is(buildq.cancel_build(:done), false, 'cancel finished returns false');
select is(b.build_status, 0::smallint, 'cancel finished keeps its status')
from buildq.builds as b where b.id = :done;
select is(buildq.cancel_build(:queued), false, 'cancel twice returns false');
select throws_ok(
  'select buildq.cancel_build(-1)', 'BQ001', 'build -1 does not exist',
  'cancel unknown id raises BQ001'
);
select throws_ok(
  'select buildq.cancel_build(null)', '22004', null, 'cancel null id raises 22004'
);

-- Set-based form.
select buildq.queue_build('a', 'x86_64-linux', '/nix/store/d-a.drv') as set_a \gset
select buildq.queue_build('b', 'x86_64-linux', '/nix/store/e-b.drv') as set_b \gset
select results_eq(
  format('select * from buildq.cancel_builds(array[%s, %s, %s, %s])',
    :set_b, :done, :set_a, :set_a),
  format('values (%s::bigint), (%s)', :set_a, :set_b),
  'cancel_builds returns the ids it cancelled, ascending'
);
select is(b.build_status, 4::smallint, 'cancel_builds cancels each unfinished build')
from buildq.builds as b where b.id = :set_b;
select is(b.build_status, 0::smallint, 'cancel_builds skips a finished build')
from buildq.builds as b where b.id = :done;

select buildq.queue_build('c', 'x86_64-linux', '/nix/store/f-c.drv') as set_c \gset
select throws_ok(
  format('select buildq.cancel_builds(array[%s, -1, -2])', :set_c),
  'BQ001', 'builds -2, -1 do not exist',
  'cancel_builds with unknown ids raises BQ001'
);
select is(b.finished, 0, 'cancel_builds with an unknown id changes nothing')
from buildq.builds as b where b.id = :set_c;
select throws_ok(
  format('select buildq.cancel_builds(array[%s, null])', :set_c),
  '22004', null, 'cancel_builds with a null element raises 22004'
);
select throws_ok(
  'select buildq.cancel_builds(null)', '22004', null,
  'cancel_builds with a null list raises 22004'
);
select is_empty(
  'select * from buildq.cancel_builds(''{}'')', 'cancel_builds of no ids returns nothing'
);
select is(
  (select count(*) from buildq.builds as b where b.finished = 0 and b.id = :set_c),
  1::bigint,
  'cancel_builds of no ids changes nothing'
);

select * from finish();
rollback;
