-- Restarting builds: restart_build and restart_builds.
begin;
set local client_min_messages = warning;
select plan(28);

select buildq.queue_build('hello', 'x86_64-linux', '/nix/store/a-hello.drv') as failed \gset
select attempt as old_attempt from buildq.claim_builds('runner-1') \gset
select buildq.create_build_step(:failed, runner => 'runner-1', attempt => :old_attempt);
select buildq.finish_build(
  :failed, 1, is_cached => true, size => 10, closure_size => 20,
  release_name => 'hello-1.0', error_msg => 'compile error',
  attempt => :old_attempt
);

select is(buildq.restart_build(:failed), true, 'restart finished returns true');
select is(b.finished, 0, 'restarted build is unfinished')
from buildq.builds as b where b.id = :failed;
select is(b.build_status, null, 'restart clears the status')
from buildq.builds as b where b.id = :failed;
select is(b.start_time, null, 'restart clears start_time')
from buildq.builds as b where b.id = :failed;
select is(b.stop_time, null, 'restart clears stop_time')
from buildq.builds as b where b.id = :failed;
select is(b.is_cached_build, false, 'restart clears the cached flag')
from buildq.builds as b where b.id = :failed;
select is(b.size, null, 'restart clears size')
from buildq.builds as b where b.id = :failed;
select is(b.closure_size, null, 'restart clears closure_size')
from buildq.builds as b where b.id = :failed;
select is(b.release_name, null, 'restart clears release_name')
from buildq.builds as b where b.id = :failed;
select is(b.error_msg, null, 'restart clears error_msg')
from buildq.builds as b where b.id = :failed;
select is(b.finished_by, null, 'restart clears finished_by')
from buildq.builds as b where b.id = :failed;
select is(b.claimed_at, null, 'restart clears claimed_at')
from buildq.builds as b where b.id = :failed;
select is(b.notification_pending_since, null, 'restart clears the pending notification')
from buildq.builds as b where b.id = :failed;
select is(b.attempt, :old_attempt + 1, 'restart increments attempt')
from buildq.builds as b where b.id = :failed;
select is(
  (select count(*) from buildq.queued_builds as q where q.id = :failed),
  1::bigint,
  'restarted build is in the queue'
);
select is(
  (select count(*) from buildq.recent_failures as f where f.id = :failed),
  0::bigint,
  'restarted build is not a recent failure'
);

select is(
  buildq.finish_build(:failed, 0, attempt => :old_attempt),
  false,
  'late finish from the old attempt returns false'
);
select is(b.finished, 0, 'late finish leaves the build unfinished')
from buildq.builds as b where b.id = :failed;
select attempt as new_attempt from buildq.claim_builds('runner-2') \gset
select is(
  buildq.finish_build(:failed, 0, attempt => :new_attempt),
  true,
  'finish of the new attempt returns true'
);

select buildq.queue_build('world', 'x86_64-linux', '/nix/store/b-world.drv') as queued \gset
select is(buildq.restart_build(:queued), false, 'restart unfinished returns false');
select is(b.attempt, 0, 'restart unfinished keeps the attempt')
from buildq.builds as b where b.id = :queued;
select throws_ok(
  'select buildq.restart_build(-1)', 'BQ001', 'build -1 does not exist',
  'restart unknown id raises BQ001'
);
select throws_ok(
  'select buildq.restart_build(null)', '22004', null, 'restart null id raises 22004'
);

-- Set-based form: e.g. all failed builds of a job.
select buildq.queue_build('job-x', 'x86_64-linux', '/nix/store/c-x1.drv') as x1 \gset
select buildq.queue_build('job-x', 'x86_64-linux', '/nix/store/d-x2.drv') as x2 \gset
select buildq.queue_build('job-x', 'x86_64-linux', '/nix/store/e-x3.drv') as x3 \gset
select buildq.finish_build(:x1, 1);
select buildq.finish_build(:x2, 0);
select buildq.finish_build(:x3, 1);
select results_eq(
  $$select * from buildq.restart_builds(array(
      select b.id from buildq.builds as b
      where b.job = 'job-x' and b.build_status = 1))$$,
  format('values (%s::bigint), (%s)', :x1, :x3),
  'restart_builds returns the ids it restarted'
);
select is(b.build_status, 0::smallint, 'restart_builds leaves builds not listed')
from buildq.builds as b where b.id = :x2;
select results_eq(
  format('select * from buildq.restart_builds(array[%s, %s])', :x1, :x2),
  format('values (%s::bigint)', :x2),
  'restart_builds skips unfinished builds'
);
select throws_ok(
  format('select buildq.restart_builds(array[%s, -1])', :x2),
  'BQ001', 'build -1 does not exist',
  'restart_builds with an unknown id raises BQ001'
);
select is(b.finished, 0, 'restart_builds with an unknown id changes nothing')
from buildq.builds as b where b.id = :x2;

select * from finish();
rollback;
