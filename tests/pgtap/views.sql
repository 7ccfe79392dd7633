-- Views for people in psql.
begin;
set local client_min_messages = warning;
select plan(13);

select buildq.queue_build('low', 'x86_64-linux', '/nix/store/a.drv') as low \gset
select buildq.queue_build('high', 'x86_64-linux', '/nix/store/b.drv', priority => 5) as high \gset
select buildq.queue_build('run', 'x86_64-linux', '/nix/store/c.drv', global_priority => 9) as run \gset
select buildq.queue_build('fail', 'x86_64-linux', '/nix/store/d.drv') as fail \gset
select buildq.queue_build('ok', 'x86_64-linux', '/nix/store/e.drv') as ok \gset
select buildq.queue_build('gone', 'x86_64-linux', '/nix/store/f.drv') as gone \gset
select c.id from buildq.claim_builds('runner-1') as c;
select buildq.create_build_step(:run, machine => 'builder-7', runner => 'runner-1');
select buildq.create_build_step(:fail, runner => 'runner-1') as fail_step \gset
select buildq.finish_build_step(:fail, :fail_step, 1, error_msg => 'make: *** Error 2');
select buildq.finish_build(:fail, 1, error_msg => 'build failed');
select buildq.finish_build(:ok, 0);
select buildq.cancel_build(:gone);
select buildq.bump_build(:low);

select results_eq(
  'select q.id, q.position from buildq.queued_builds as q',
  format('values (%s::bigint, 1::bigint), (%s, 2)', :low, :high),
  'queued_builds lists waiting builds in dispatch order'
);
select results_eq(
  'select r.id, r.runner, r.step_nr, r.step_machine from buildq.running_builds as r',
  format($$values (%s::bigint, 'runner-1'::text, 1, 'builder-7'::text)$$, :run),
  'running_builds shows the runner and the busy step'
);
select results_eq(
  'select f.id, f.status, f.failed_step_nr, f.failed_step_error_msg '
  'from buildq.recent_failures as f',
  format($$values (%s::bigint, 'failed'::text, %s, 'make: *** Error 2'::text)$$,
    :fail, :fail_step),
  'recent_failures lists failures with the failed step, not successes or cancels'
);

select is(s.builds, 2::bigint, 'status_counts counts queued builds')
from buildq.status_counts as s where s.state = 'queued';
select is(s.builds, 1::bigint, 'status_counts counts running builds')
from buildq.status_counts as s where s.state = 'running';
select is(s.builds, 1::bigint, 'status_counts counts succeeded builds')
from buildq.status_counts as s where s.build_status = 0;
select is(s.builds, 1::bigint, 'status_counts counts failed builds')
from buildq.status_counts as s where s.build_status = 1;
select is(s.builds, 1::bigint, 'status_counts counts cancelled builds')
from buildq.status_counts as s where s.build_status = 4;
select is(s.builds, 0::bigint, 'status_counts shows statuses without builds')
from buildq.status_counts as s where s.build_status = 12;
select is(
  (select count(*) from buildq.status_counts as s where s.build_status = 8),
  0::bigint,
  'status_counts leaves out step-only statuses'
);

select results_eq(
  format(
    'select h.event, h.step_nr, h.new_state from buildq.build_history as h '
    'where h.build_id = %s', :fail
  ),
  $$values
    ('queued'::text, null::integer, 'queued'::text),
    ('started', null, 'queued'),
    ('step_started', 1, 'busy'),
    ('step_finished', 1, 'failed'),
    ('finished', null, 'failed')$$,
  'build_history lists the events of one build in order'
);
select is(
  h.changes, '{"global_priority": 10}'::jsonb, 'build_history shows the changed columns'
)
from buildq.build_history as h where h.build_id = :low and h.event = 'bumped';
select is(h.changes, null, 'build_history shows no changes for an insert')
from buildq.build_history as h where h.build_id = :low and h.event = 'queued';

select * from finish();
rollback;
