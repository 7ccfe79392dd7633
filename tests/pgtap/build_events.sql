-- The audit trail buildq.build_events.
begin;
set local client_min_messages = warning;
set local application_name = 'pgtap-build-events';
select plan(26);

create function pg_temp.run_as(role_name text, statement text)
returns void
language plpgsql
as $$
begin
  perform set_config('role', role_name, true);
  execute statement;
  perform set_config('role', 'none', true);
end;
$$;

select buildq.queue_build('a', 'x86_64-linux', '/nix/store/a.drv') as b1 \gset
select buildq.queue_build('other', 'x86_64-linux', '/nix/store/o.drv') as other \gset
select c.id from buildq.claim_builds('runner-1') as c;
select buildq.create_build_step(:b1, runner => 'runner-1') as s1 \gset
select buildq.create_build_step(:b1, runner => 'runner-1') as s2 \gset
select buildq.finish_build_step(:b1, :s1, 0);
select buildq.clear_busy('runner-1');
select c.id from buildq.claim_builds('runner-2') as c;
select buildq.finish_build(:b1, 0);
select buildq.ack_build_notification(:b1);
select buildq.restart_build(:b1);
select buildq.bump_build(:b1);
update buildq.builds set priority = 7 where id = :b1;
update buildq.builds set priority = 7 where id = :b1;
select buildq.cancel_build(:b1);

select results_eq(
  format(
    'select e.event, e.step_nr, e.attempt from buildq.build_events as e '
    'where e.build_id = %s order by e.id', :b1
  ),
  $$values
    ('queued'::text, null::integer, 0),
    ('claimed', null, 1),
    ('started', null, 1),
    ('step_started', 1, 1),
    ('step_allocated', null, 1),
    ('step_started', 2, 1),
    ('step_finished', 1, 1),
    ('step_finished', 2, 1),
    ('released', null, 1),
    ('claimed', null, 2),
    ('finished', null, 2),
    ('notification_acked', null, 2),
    ('restarted', null, 3),
    ('bumped', null, 3),
    ('updated', null, 3),
    ('cancelled', null, 3)$$,
  'every change of a build and its steps is recorded once, in order'
);

select results_eq(
  format(
    'select e.old_state, e.new_state from buildq.build_events as e '
    'where e.build_id = %s and e.event in (''finished'', ''restarted'') '
    'order by e.id', :b1
  ),
  $$values ('running'::text, 'succeeded'::text), ('succeeded', 'queued')$$,
  'events record the old and new state'
);
select is(e.old_values, '{"priority": 0}'::jsonb, 'direct update records the old value')
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select is(e.new_values, '{"priority": 7}'::jsonb, 'direct update records the new value')
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select is(e.db_user, session_user::text, 'event records session_user')
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select is(e.application_name, 'pgtap-build-events', 'event records application_name')
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select is(e.transaction_id, pg_current_xact_id(), 'event records the transaction id')
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select ok(
  e.occurred_at between now() and clock_timestamp(), 'event records the time of the change'
)
from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated';
select is(e.new_values ->> 'status', '3', 'clear_busy records the aborted step')
from buildq.build_events as e
where e.build_id = :b1 and e.step_nr = :s2 and e.event = 'step_finished';
select is(
  (select array_agg(k.key::name order by k.key) from jsonb_object_keys(e.new_values) as k (key)),
  (
    select array_agg(a.attname order by a.attname)
    from pg_catalog.pg_attribute as a
    where a.attrelid = 'buildq.builds'::regclass and a.attnum > 0 and not a.attisdropped
  ),
  'queued event holds every column of the new row'
)
from buildq.build_events as e where e.build_id = :b1 and e.event = 'queued';

select buildq.queue_build('b', 'x86_64-linux', '/nix/store/b.drv') as b2 \gset
select buildq.abort_build(:b2, 'recipe was garbage-collected');
select buildq.queue_build('c', 'x86_64-linux', '/nix/store/c.drv') as b3 \gset
update buildq.builds set id = default where id = :b3 returning id as b3_new \gset
select buildq.queue_build('d', 'x86_64-linux', '/nix/store/d.drv') as b4 \gset
select buildq.create_build_step(:b4) as b4_step \gset
delete from buildq.builds where id = :b4;

select is(
  (select e.event from buildq.build_events as e where e.build_id = :b2 order by e.id desc limit 1),
  'aborted',
  'abort is recorded as aborted'
);
select results_eq(
  format(
    'select e.event, e.step_nr from buildq.build_events as e '
    'where e.build_id = %s and e.event like ''%%deleted'' order by e.id', :b4
  ),
  $$values ('deleted'::text, null::integer), ('step_deleted', 1)$$,
  'deleting a build records itself and its steps'
);
select is(
  (select e.event from buildq.build_events as e where e.build_id = :b3 order by e.id desc limit 1),
  'deleted',
  'changing an id records the old id as deleted'
);
select is(
  (select e.event from buildq.build_events as e where e.build_id = :b3_new),
  'snapshot',
  'changing an id records a snapshot under the new id'
);
select is(
  (select count(*) from buildq.build_events as e where e.build_id = :b1 and e.event = 'updated'),
  1::bigint,
  'an update that changes nothing records nothing'
);

-- Replay: the events of each build rebuild its current row.
select is_empty(
  'select b.id from buildq.builds as b
   where buildq.build_as_of(b.id) is distinct from b',
  'events of every build replay to its current row'
);
select is(
  (buildq.build_as_of(:b1, e.occurred_at)).build_status,
  0::smallint,
  'build_as_of returns the row at an earlier time'
)
from buildq.build_events as e where e.build_id = :b1 and e.event = 'finished';
select is(buildq.build_as_of(:b4) is null, true, 'build_as_of of a deleted build is null');
select throws_ok(
  'select buildq.build_as_of(-1)', 'BQ001', null, 'build_as_of of an unknown id raises BQ001'
);

-- Append-only for everyone but the owner.
select throws_ok(
  $$select pg_temp.run_as('buildq_operator', 'update buildq.build_events set event = ''updated''')$$,
  '42501', null, 'operator cannot update events'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_operator', 'delete from buildq.build_events')$$,
  '42501', null, 'operator cannot delete events'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_reader', 'insert into buildq.build_events (build_id, event) values (1, ''updated'')')$$,
  '42501', null, 'reader cannot insert events'
);
grant update, delete, truncate on buildq.build_events to buildq_reader;
select throws_ok(
  $$select pg_temp.run_as('buildq_reader', 'update buildq.build_events set event = ''updated''')$$,
  '42501', null, 'a granted update by a non-owner is rejected'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_reader', 'delete from buildq.build_events')$$,
  '42501', null, 'a granted delete by a non-owner is rejected'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_reader', 'truncate buildq.build_events')$$,
  '42501', null, 'a granted truncate by a non-owner is rejected'
);
select lives_ok(
  format('delete from buildq.build_events where build_id = %s', :b4),
  'the owner may delete events'
);

select * from finish();
rollback;
