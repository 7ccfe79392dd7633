-- Table buildq.runners: one row per queue runner id, with its heartbeat and
-- counters. The file holds no begin/commit because the caller supplies the
-- transaction.

insert into buildq.schema_migrations (version, description)
values (2, 'create_runners');

create table buildq.runners (
  id text primary key,
  host text,
  pid integer,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at timestamptz,
  counters jsonb not null default '{}',
  constraint runners_id_not_empty check (id <> ''),
  constraint runners_pid_positive check (pid > 0),
  constraint runners_counters_is_object check (
    jsonb_typeof(counters) = 'object'
  ),
  constraint runners_heartbeat_after_start check (heartbeat_at >= started_at),
  constraint runners_stopped_after_start check (stopped_at >= started_at)
);

comment on table buildq.runners is
'One row per runner id, written by the runner process that uses the id: '
'register_runner at start, update_runner periodically and at exit. A later '
'process with the same id takes the row over and resets its counters.';
comment on column buildq.runners.id is
'Runner id, as passed to claim_builds and recorded in builds.finished_by.';
comment on column buildq.runners.host is
'Host name of the machine the process runs on.';
comment on column buildq.runners.pid is
'Operating system process id of the runner process.';
comment on column buildq.runners.started_at is
'Start of the current (or last) process with this id.';
comment on column buildq.runners.heartbeat_at is
'Last time the process wrote its counters; a stale heartbeat with a null '
'stopped_at means the process died without stopping.';
comment on column buildq.runners.stopped_at is
'Time of an orderly stop; null while the process runs or after a crash.';
comment on column buildq.runners.counters is
'Counters of the current (or last) process as a JSON object of integers, '
'e.g. {"nr_builds_done": 3}. docs/runner.md lists the keys.';
