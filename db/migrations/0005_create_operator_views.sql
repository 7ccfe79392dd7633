-- Views for people in psql: the queue, running builds, recent failures,
-- counts per state and the history of builds from the audit trail. The reader
-- role (buildq.role_names) may select them and the tables; operators are
-- members of the reader role.
-- The file holds no begin/commit because the caller supplies the transaction.

insert into buildq.schema_migrations (version, description)
values (5, 'create_operator_views');

create view buildq.queued_builds as
select
  b.id,
  b.job,
  b.system,
  b.global_priority,
  b.priority,
  b.attempt,
  b.queued_at,
  row_number() over (
    order by b.global_priority desc, b.priority desc, b.id asc
  ) as position,
  date_trunc('second', now() - b.queued_at) as waiting
from buildq.builds as b
where b.finished = 0 and b.busy = 0
order by b.global_priority desc, b.priority desc, b.id asc;

comment on view buildq.queued_builds is
'Builds waiting for a runner (unfinished and not claimed), in the order '
'claim_builds hands them out: global_priority desc, priority desc, id.';
comment on column buildq.queued_builds.position is
'1 for the build that the next claim without a system filter receives.';
comment on column buildq.queued_builds.waiting is
'Time since the build was queued, in whole seconds.';

create view buildq.running_builds as
select
  b.id,
  b.job,
  b.system,
  b.claimed_by as runner,
  r.heartbeat_at as runner_heartbeat_at,
  b.attempt,
  b.claimed_at,
  st.step_nr,
  st.drv_path as step_drv_path,
  st.machine as step_machine,
  st.busy as step_phase,
  st.start_time as step_started_at,
  date_trunc('second', now() - b.claimed_at) as running_for
from buildq.builds as b
left join buildq.runners as r on b.claimed_by = r.id
left join lateral (
  select
    s.step_nr,
    s.drv_path,
    s.machine,
    s.busy,
    s.start_time
  from buildq.build_steps as s
  where s.build_id = b.id and s.busy <> 0
  order by s.step_nr desc
  limit 1
) as st on true
where b.busy = 1
order by b.claimed_at, b.id;

comment on view buildq.running_builds is
'Claimed builds with the runner that holds them and its newest busy step '
'(step columns null before the first step).';
comment on column buildq.running_builds.runner_heartbeat_at is
'Last heartbeat of the runner from buildq.runners; null if it never '
'registered. A stale value means the runner may be dead.';
comment on column buildq.running_builds.running_for is
'Time since the claim, in whole seconds.';
comment on column buildq.running_builds.step_phase is
'busy value of the step: 1 building, higher values for later phases.';

create view buildq.recent_failures as
select
  b.id,
  b.job,
  b.system,
  b.build_status,
  s.name as status,
  b.stop_time,
  b.attempt,
  b.finished_by,
  b.error_msg,
  fs.step_nr as failed_step_nr,
  fs.drv_path as failed_step_drv_path,
  fs.machine as failed_step_machine,
  fs.error_msg as failed_step_error_msg
from buildq.builds as b
inner join buildq.build_statuses as s on b.build_status = s.code
left join lateral (
  select
    st.step_nr,
    st.drv_path,
    st.machine,
    st.error_msg
  from buildq.build_steps as st
  where st.build_id = b.id and st.busy = 0 and st.status <> 0
  order by st.step_nr desc
  limit 1
) as fs on true
where
  b.finished = 1
  and b.build_status not in (0, 4)
  and b.stop_time > now() - interval '7 days'
order by b.stop_time desc, b.id desc;

comment on view buildq.recent_failures is
'Builds that finished in the last 7 days with a status other than succeeded '
'(0) or cancelled (4), newest first, with their last failed step.';

create view buildq.status_counts as
select
  c.state,
  c.build_status,
  c.builds
from (
  select
    'queued' as state,
    null::smallint as build_status,
    count(*) filter (where b.finished = 0 and b.busy = 0) as builds
  from buildq.builds as b
  union all
  select
    'running' as state,
    null::smallint as build_status,
    count(*) filter (where b.finished = 0 and b.busy = 1) as builds
  from buildq.builds as b
  union all
  select
    s.name as state,
    s.code as build_status,
    count(b.id) as builds
  from buildq.build_statuses as s
  left join buildq.builds as b
    on s.code = b.build_status and b.finished = 1
  where s.applies_to_builds
  group by s.code, s.name
) as c
order by c.build_status nulls first, c.state = 'running';

comment on view buildq.status_counts is
'Number of builds per state: queued, running, then one row per build status '
'code (zero counts included).';

create view buildq.build_history as
select
  e.build_id,
  e.id as event_id,
  e.occurred_at,
  e.event,
  e.step_nr,
  e.attempt,
  e.old_state,
  e.new_state,
  e.db_user,
  e.application_name,
  e.client_addr,
  e.transaction_id,
  case when e.old_values is not null then e.new_values end as changes
from buildq.build_events as e
order by e.build_id, e.id;

comment on view buildq.build_history is
'The audit trail in readable form; filter it on build_id, e.g. '
'select * from buildq.build_history where build_id = 42;';
comment on column buildq.build_history.changes is
'Changed columns with their new values; null for inserts, snapshots and '
'deletes, whose whole row is in buildq.build_events.';

do $$
declare
  v_reader text;
  v_relation text;
begin
  select r.role_name
  into strict v_reader
  from buildq.role_names as r
  where r.purpose = 'reader';

  foreach v_relation in array array[
    'buildq.queued_builds', 'buildq.running_builds', 'buildq.recent_failures',
    'buildq.status_counts', 'buildq.build_history', 'buildq.builds',
    'buildq.build_steps', 'buildq.build_statuses', 'buildq.build_events',
    'buildq.runners'
  ] loop
    execute format('grant select on %s to %I', v_relation, v_reader);
  end loop;
end;
$$;
