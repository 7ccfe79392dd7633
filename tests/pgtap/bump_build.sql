-- Moving a build to the front of the queue: bump_build.
begin;
set local client_min_messages = warning;
select plan(10);

select buildq.queue_build('a', 'x86_64-linux', '/nix/store/a.drv', global_priority => 3) as first \gset
select buildq.queue_build('b', 'x86_64-linux', '/nix/store/b.drv', priority => 9) as second \gset
select buildq.queue_build('c', 'x86_64-linux', '/nix/store/c.drv') as last \gset

select is(buildq.bump_build(:last), true, 'bump returns true');
select is(q.position, 1::bigint, 'bumped build is first in the queue')
from buildq.queued_builds as q where q.id = :last;
select is(b.global_priority, 4, 'bump sets global_priority one above the highest')
from buildq.builds as b where b.id = :last;
select is(
  (select c.id from buildq.claim_builds('runner-1') as c),
  :last::bigint,
  'next claim receives the bumped build'
);
select is(buildq.bump_build(:last), false, 'bump of the front build returns false');
select is(buildq.bump_build(:second), true, 'bump of a build behind a running one returns true');

select buildq.finish_build(:first, 0);
select is(buildq.bump_build(:first), false, 'bump finished returns false');
select is(b.global_priority, 3, 'bump finished keeps global_priority')
from buildq.builds as b where b.id = :first;
select throws_ok(
  'select buildq.bump_build(-1)', 'BQ001', 'build -1 does not exist',
  'bump unknown id raises BQ001'
);
select throws_ok(
  'select buildq.bump_build(null)', '22004', null, 'bump null id raises 22004'
);

select * from finish();
rollback;
