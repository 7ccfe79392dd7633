-- Roles buildq_runner, buildq_operator and buildq_reader: what each may and
-- may not do.
begin;
set local client_min_messages = warning;
select plan(138);

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

create temp table roles (purpose text, role_name name);
insert into roles values
('runner', 'buildq_runner'), ('operator', 'buildq_operator'), ('reader', 'buildq_reader');

-- The roles themselves.
select is(
  (select string_agg(r.purpose || '=' || r.role_name, ' ' order by r.purpose) from buildq.role_names as r),
  'operator=buildq_operator reader=buildq_reader runner=buildq_runner',
  'role_names records the default names'
);
select has_role(r.role_name) from roles as r order by r.purpose;
select is(a.rolcanlogin, false, format('%s cannot log in', r.role_name))
from roles as r inner join pg_catalog.pg_roles as a on r.role_name = a.rolname
order by r.purpose;
select isnt_superuser(r.role_name) from roles as r order by r.purpose;
select is_member_of('buildq_runner', array['buildq_operator'], 'operator is a member of runner');
select is_member_of('buildq_reader', array['buildq_operator'], 'operator is a member of reader');
select ok(
  not pg_has_role('buildq_runner', 'buildq_operator', 'member'),
  'runner is not a member of operator'
);
select ok(
  not pg_has_role('buildq_reader', 'buildq_operator', 'member'),
  'reader is not a member of operator'
);

-- Execute privileges: runner functions for runner (and operator through
-- membership), intervention functions for operator, build_as_of for reader
-- (and operator), and internal helpers for no role.
create temp table granted_functions (name name, args name[], purpose text);
insert into granted_functions values
('queue_build', '{text,text,text,integer,integer,integer,integer}', 'runner'),
('claim_builds', '{text,integer,text[]}', 'runner'),
(
  'finish_build',
  '{bigint,integer,"timestamp with time zone","timestamp with time zone",boolean,bigint,bigint,text,text,text,integer}',
  'runner'
),
('abort_build', '{bigint,text,text,integer}', 'runner'),
(
  'create_build_step',
  '{bigint,text,integer,text,text,text,integer,"timestamp with time zone"}',
  'runner'
),
(
  'finish_build_step',
  '{bigint,integer,integer,text,"timestamp with time zone",text,integer,integer,boolean,bigint}',
  'runner'
),
('clear_busy', '{text}', 'runner'),
('release_build', '{bigint,text,integer}', 'runner'),
('finish_cached_build', '{bigint,text,integer}', 'runner'),
('register_runner', '{text,text,integer}', 'runner'),
('update_runner', '{text,jsonb,boolean}', 'runner'),
('ack_build_notification', '{bigint,integer}', 'runner'),
('pending_notifications', '{}', 'runner'),
('cancel_build', '{bigint,text}', 'operator'),
('cancel_builds', '{bigint[],text}', 'operator'),
('restart_build', '{bigint}', 'operator'),
('restart_builds', '{bigint[]}', 'operator'),
('bump_build', '{bigint}', 'operator'),
('build_as_of', '{bigint,"timestamp with time zone"}', 'reader'),
('check_build_ids', '{bigint[]}', null),
('changed_fields', '{jsonb,jsonb}', null),
('grant_execute', '{regprocedure,text}', null),
('check_status_code', '{integer,boolean}', null);

select function_privs_are(
  'buildq', f.name, f.args, r.role_name,
  case
    when f.purpose = r.purpose then array['EXECUTE']
    when r.purpose = 'operator' and f.purpose is not null then array['EXECUTE']
    else array[]::text[]
  end
)
from granted_functions as f cross join roles as r
order by f.name, r.purpose;

-- Table privileges: reading for reader and operator, and of builds for the
-- runner, whose queue monitor scans it; no writing for anyone.
create temp table tables (name name, readable boolean);
insert into tables values
('builds', true), ('build_steps', true), ('build_statuses', true),
('build_events', true), ('runners', true), ('schema_migrations', false),
('role_names', false);

select table_privs_are(
  'buildq', t.name, r.role_name,
  case
    when t.readable and (r.purpose <> 'runner' or t.name = 'builds') then array['SELECT']
    else array[]::text[]
  end
)
from tables as t cross join roles as r
order by t.name, r.purpose;

-- What each role can do, tried for real.
select buildq.queue_build('a', 'x86_64-linux', '/nix/store/a.drv') as build \gset

create temp table denied (statement text);
insert into denied values
('insert into buildq.builds (job, system, drv_path) values (''j'', ''s'', ''d'')'),
('update buildq.builds set priority = 1'),
('delete from buildq.builds'),
('truncate buildq.builds'),
('update buildq.build_steps set busy = 0'),
('delete from buildq.build_steps'),
('update buildq.build_statuses set name = ''x'''),
('update buildq.runners set host = ''x''');

select throws_ok(
  format('select pg_temp.run_as(%L, %L)', r.role_name, d.statement),
  '42501', null, format('%s: %s is denied', r.role_name, d.statement)
)
from roles as r cross join denied as d
order by r.purpose, d.statement;

select lives_ok(
  $$select pg_temp.run_as('buildq_runner', 'select buildq.claim_builds(''runner-1'')')$$,
  'runner may claim builds'
);
select throws_ok(
  format($$select pg_temp.run_as('buildq_runner', 'select buildq.cancel_build(%s)')$$, :build),
  '42501', null, 'runner may not cancel builds'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_runner', 'select * from buildq.queued_builds')$$,
  '42501', null, 'runner may not read the views'
);
select lives_ok(
  format($$select pg_temp.run_as('buildq_operator', 'select buildq.cancel_build(%s)')$$, :build),
  'operator may cancel builds'
);
select is(b.build_status, 4::smallint, 'operator''s cancel changed the build')
from buildq.builds as b where b.id = :build;
select lives_ok(
  format($$select pg_temp.run_as('buildq_operator', 'select buildq.restart_build(%s)')$$, :build),
  'operator may restart builds'
);
select lives_ok(
  $$select pg_temp.run_as('buildq_operator', 'select buildq.queue_build(''b'', ''s'', ''d'')')$$,
  'operator may call runner functions'
);
select lives_ok(
  $$select pg_temp.run_as('buildq_reader',
    'select * from buildq.queued_builds, buildq.running_builds, buildq.recent_failures,
       buildq.status_counts, buildq.build_history')$$,
  'reader may read every view'
);
select throws_ok(
  format($$select pg_temp.run_as('buildq_reader', 'select buildq.cancel_build(%s)')$$, :build),
  '42501', null, 'reader may not cancel builds'
);
select throws_ok(
  $$select pg_temp.run_as('buildq_reader', 'select buildq.queue_build(''b'', ''s'', ''d'')')$$,
  '42501', null, 'reader may not queue builds'
);

select * from finish();
rollback;
