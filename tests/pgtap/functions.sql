-- Existence, signature, volatility and security of the functions that
-- runners, operators and readers call, and of the internal helpers.
begin;
set local client_min_messages = warning;
select plan(109);

create temp table expected_functions (
  name name,
  args name[],
  returns text,
  volatility text,
  is_definer boolean
);

insert into expected_functions values
('queue_build', '{text,text,text,integer,integer,integer,integer}', 'bigint', 'volatile', true),
('claim_builds', '{text,integer,text[]}', 'setof record', 'volatile', true),
(
  'finish_build',
  '{bigint,integer,"timestamp with time zone","timestamp with time zone",boolean,bigint,bigint,text,text,text,integer}',
  'boolean', 'volatile', true
),
('abort_build', '{bigint,text,text,integer}', 'boolean', 'volatile', true),
(
  'create_build_step',
  '{bigint,text,integer,text,text,text,integer,"timestamp with time zone"}',
  'integer', 'volatile', true
),
(
  'finish_build_step',
  '{bigint,integer,integer,text,"timestamp with time zone",text,integer,integer,boolean,bigint}',
  'boolean', 'volatile', true
),
('clear_busy', '{text}', 'integer', 'volatile', true),
('release_build', '{bigint,text,integer}', 'boolean', 'volatile', true),
('finish_cached_build', '{bigint,text,integer}', 'boolean', 'volatile', true),
('register_runner', '{text,text,integer}', 'timestamp with time zone', 'volatile', true),
('update_runner', '{text,jsonb,boolean}', 'boolean', 'volatile', true),
('ack_build_notification', '{bigint,integer}', 'boolean', 'volatile', true),
('pending_notifications', '{}', 'setof record', 'stable', true),
('cancel_build', '{bigint,text}', 'boolean', 'volatile', true),
('cancel_builds', '{bigint[],text}', 'setof bigint', 'volatile', true),
('restart_build', '{bigint}', 'boolean', 'volatile', true),
('restart_builds', '{bigint[]}', 'setof bigint', 'volatile', true),
('bump_build', '{bigint}', 'boolean', 'volatile', true),
('build_as_of', '{bigint,"timestamp with time zone"}', 'buildq.builds', 'stable', true),
('check_build_ids', '{bigint[]}', 'void', 'stable', false),
('changed_fields', '{jsonb,jsonb}', 'jsonb', 'immutable', false),
('grant_execute', '{regprocedure,text}', 'void', 'volatile', false),
('log_build_changes', '{}', 'trigger', 'volatile', true),
('log_build_step_changes', '{}', 'trigger', 'volatile', true),
('notify_build_events', '{}', 'trigger', 'volatile', false),
('reject_build_event_change', '{}', 'trigger', 'volatile', false),
('check_status_code', '{integer,boolean}', 'smallint', 'stable', true);

-- Every function of the schema is listed above, so a new one cannot skip
-- these checks or the privilege checks in roles.sql.
select functions_are(
  'buildq', array(select f.name from expected_functions as f),
  'schema buildq has exactly the listed functions'
);

select has_function('buildq', f.name, f.args, format('buildq.%s exists', f.name))
from expected_functions as f order by f.name;

select function_returns('buildq', f.name, f.args, f.returns)
from expected_functions as f order by f.name;

select volatility_is('buildq', f.name, f.args, f.volatility)
from expected_functions as f order by f.name;

select is_definer('buildq', f.name, f.args, format('buildq.%s is security definer', f.name))
from expected_functions as f where f.is_definer order by f.name;

select isnt_definer('buildq', f.name, f.args, format('buildq.%s is security invoker', f.name))
from expected_functions as f where not f.is_definer order by f.name;

select * from finish();
rollback;
