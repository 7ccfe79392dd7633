-- Table buildq.build_events: the audit trail of every change to builds and
-- build steps. Triggers defined in db/functions/ (log_build_changes,
-- log_build_step_changes) fill it; this file creates the table and records
-- the rows that exist now as 'snapshot' events, so that the history of every
-- build starts with a complete row.
-- The file holds no begin/commit because the caller supplies the transaction.

insert into buildq.schema_migrations (version, description)
values (3, 'create_build_events');

create table buildq.build_events (
  id bigint generated always as identity primary key,
  build_id bigint not null,
  step_nr integer,
  event text not null,
  attempt integer,
  old_state text,
  new_state text,
  old_values jsonb,
  new_values jsonb,
  db_user text not null default session_user,
  application_name text default current_setting('application_name'),
  client_addr inet default inet_client_addr(),
  transaction_id xid8 not null default pg_current_xact_id(),
  occurred_at timestamptz not null default clock_timestamp(),
  constraint build_events_event_known check (
    (
      step_nr is null
      and event in (
        'snapshot', 'queued', 'claimed', 'started', 'step_allocated',
        'released', 'bumped', 'finished', 'aborted', 'cancelled',
        'restarted', 'notification_acked', 'updated', 'deleted'
      )
    )
    or (
      step_nr is not null
      and event in (
        'snapshot', 'step_started', 'step_finished', 'step_updated',
        'step_deleted'
      )
    )
  )
);

comment on table buildq.build_events is
'Audit trail: one row per change of a row of buildq.builds (step_nr null) '
'or buildq.build_steps, written by statement-level triggers, so direct '
'updates in psql are recorded too. Folding new_values in id order gives '
'the current row (see build_as_of). Only the owner may update or delete '
'rows; truncating builds is not recorded.';
comment on column buildq.build_events.build_id is
'Id of the build; no foreign key, so the trail outlives deleted builds.';
comment on column buildq.build_events.step_nr is
'Step number for step events; null for events of the build row.';
comment on column buildq.build_events.event is
'Kind of change. Builds: queued, claimed, started (first step of an '
'attempt), step_allocated (later steps), released (returned to the queue by '
'clear_busy), bumped, finished, aborted (status 3), cancelled (status 4), '
'restarted, notification_acked, updated (any other change), deleted. '
'Steps: step_started, step_finished, step_updated, step_deleted. snapshot: '
'the row as it was when the trail was created, or after a key change.';
comment on column buildq.build_events.attempt is
'The build''s attempt after the change; for steps the step''s attempt, or '
'the build''s when the step has none.';
comment on column buildq.build_events.old_state is
'State before the change: queued, running or the status name for builds; '
'busy or the status name for steps. Null for an insert.';
comment on column buildq.build_events.new_state is
'State after the change, in the terms of old_state. Null for a delete.';
comment on column buildq.build_events.old_values is
'Columns that changed, with their values before the change; the whole row '
'for a delete; null for an insert.';
comment on column buildq.build_events.new_values is
'Columns that changed, with their values after the change; the whole row '
'for an insert or snapshot; null for a delete.';
comment on column buildq.build_events.db_user is
'session_user of the change: the login role, even inside a security '
'definer function or after set role.';
comment on column buildq.build_events.application_name is
'application_name of the session that made the change.';
comment on column buildq.build_events.client_addr is
'Client address of that session; null for a Unix-domain socket.';
comment on column buildq.build_events.transaction_id is
'Id of the transaction that made the change (pg_current_xact_id()).';
comment on column buildq.build_events.occurred_at is
'clock_timestamp() of the change; the change becomes visible only at commit.';

create index build_events_build_id_idx on buildq.build_events (build_id, id);

-- occurred_at grows with id, so a BRIN index stays small and serves time
-- ranges, e.g. deleting events older than a retention period.
create index build_events_occurred_at_idx on buildq.build_events
using brin (occurred_at);

revoke all on buildq.build_events from public;

insert into buildq.build_events (
  build_id, event, attempt, new_state, new_values
)
select
  b.id as build_id,
  'snapshot' as event,
  b.attempt,
  case
    when b.finished = 1 then s.name
    when b.busy = 1 then 'running'
    else 'queued'
  end as new_state,
  to_jsonb(b) as new_values
from buildq.builds as b
left join buildq.build_statuses as s on b.build_status = s.code
order by b.id;

insert into buildq.build_events (
  build_id, step_nr, event, attempt, new_state, new_values
)
select
  st.build_id,
  st.step_nr,
  'snapshot' as event,
  coalesce(st.attempt, b.attempt) as attempt,
  case when st.busy <> 0 then 'busy' else s.name end as new_state,
  to_jsonb(st) as new_values
from buildq.build_steps as st
inner join buildq.builds as b on st.build_id = b.id
left join buildq.build_statuses as s on st.status = s.code
order by st.build_id, st.step_nr;
