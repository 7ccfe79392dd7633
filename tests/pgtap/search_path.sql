-- A caller's search_path cannot capture the functions of buildq: objects
-- named like the ones the functions use, placed before pg_catalog, are
-- ignored.
begin;
set local client_min_messages = warning;
select plan(9);

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

select buildq.queue_build('a', 'x86_64-linux', '/nix/store/a.drv') as queued \gset
select buildq.queue_build('b', 'x86_64-linux', '/nix/store/b.drv') as bumped \gset
select buildq.queue_build('c', 'x86_64-linux', '/nix/store/c.drv') as waiting \gset

create schema hostile;
create table hostile.builds (id bigint, finished integer, build_status smallint);
insert into hostile.builds values (:queued, 0, null);
create table hostile.build_events (build_id bigint, event text);
create function hostile.clock_timestamp() returns timestamptz
language sql as $$ select '2000-01-01 00:00:00+00'::timestamptz $$;
create function hostile.now() returns timestamptz
language sql as $$ select '2000-01-01 00:00:00+00'::timestamptz $$;
create function hostile.unnest(bigint[]) returns setof bigint
language sql as $$ select -1::bigint $$;
create function hostile.pg_notify(text, text) returns void
language plpgsql as $$ begin raise exception 'captured pg_notify'; end; $$;
create function hostile.bigint_never_equal(bigint, bigint) returns boolean
language sql as $$ select false $$;
create operator hostile.= (
  leftarg = bigint, rightarg = bigint, function = hostile.bigint_never_equal
);
grant usage on schema hostile to public;
grant all on all tables in schema hostile to public;

set local search_path = hostile, pg_catalog, public;

select lives_ok(
  format(
    $$select pg_temp.run_as('buildq_operator', 'select buildq.cancel_build(%s)')$$, :queued
  ),
  'cancel_build runs under a hostile search_path'
);
select lives_ok(
  format(
    $$select pg_temp.run_as('buildq_operator', 'select buildq.bump_build(%s)')$$, :bumped
  ),
  'bump_build runs under a hostile search_path'
);
select lives_ok(
  $$select pg_temp.run_as('buildq_runner', 'select buildq.queue_build(''c'', ''s'', ''d'')')$$,
  'queue_build runs under a hostile search_path'
);

-- The checks below compare with =, so they run under the usual path.
reset search_path;

select is(b.build_status, 4::smallint, 'cancel changed the real buildq.builds')
from buildq.builds as b where b.id = :queued;
select is(h.finished, 0, 'cancel left the hostile builds table alone')
from hostile.builds as h where h.id = :queued;
select ok(
  b.stop_time > '2000-01-02 00:00:00+00'::timestamptz,
  'cancel used pg_catalog.clock_timestamp'
)
from buildq.builds as b where b.id = :queued;
select is(b.global_priority, 1, 'bump changed the real buildq.builds')
from buildq.builds as b where b.id = :bumped;
select is(
  (select count(*) from buildq.build_events as e where e.build_id = :queued),
  2::bigint,
  'events went to the real buildq.build_events'
);
select is_empty('select * from hostile.build_events', 'hostile build_events stays empty');

select * from finish();
rollback;
