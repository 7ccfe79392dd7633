-- Schema buildq: status codes, builds, build steps and the migration log.
--
-- Applied by `buildq migrate` or by hand with
--   psql -v ON_ERROR_STOP=1 --single-transaction -f FILE
-- The file holds no begin/commit because the caller supplies the transaction.
-- Released migrations are never edited; later changes go into new files.

create schema buildq;

comment on schema buildq is
'Build queue of buildq. Change builds through the functions in this schema, '
'which guard every transition and return whether the call changed the row.';

create table buildq.schema_migrations (
  version integer primary key,
  description text not null,
  checksum text,
  applied_at timestamptz not null default now()
);

comment on table buildq.schema_migrations is
'One row per applied file of db/migrations. Each file inserts its own row; '
'`buildq migrate` then stores the SHA-256 of the file so that an edited '
'migration is detected. A null checksum means the file was applied by hand.';

insert into buildq.schema_migrations (version, description)
values (1, 'create_builds_and_steps');

create table buildq.build_statuses (
  code smallint primary key,
  name text not null unique,
  description text not null,
  applies_to_builds boolean not null,
  applies_to_steps boolean not null
);

comment on table buildq.build_statuses is
'Result codes shared by builds and steps, numbered as in Hydra. '
'Code 5 is obsolete and absent.';

insert into buildq.build_statuses
(code, name, description, applies_to_builds, applies_to_steps)
values
(0, 'succeeded', 'the build succeeded', true, true),
(1, 'failed', 'the build itself failed', true, true),
(
  2, 'dependency failed', 'a build it depends on failed',
  true, false
),
(
  3, 'aborted',
  'stopped without a result, e.g. the recipe was garbage-collected '
  'or a runner crashed',
  true, true
),
(4, 'cancelled', 'cancelled by a person', true, true),
(
  6, 'failed with output',
  'exited 0 but left $out/nix-support/failed',
  true, true
),
(
  7, 'timed out', 'exceeded its total time or silence limit',
  true, true
),
(
  8, 'cached failure',
  'a permanent failure was remembered and not retried',
  false, true
),
(9, 'unsupported', 'no machine can build its system', true, true),
(10, 'log limit exceeded', 'the log grew over the limit', true, true),
(
  11, 'output size limit exceeded', 'the output grew over the limit',
  true, true
),
(12, 'not deterministic', 'repeated builds differ', true, true);

create table buildq.builds (
  id bigint generated always as identity primary key,
  job text not null,
  system text not null,
  drv_path text not null,
  priority integer not null default 0,
  global_priority integer not null default 0,
  timeout integer,
  max_silent integer,
  queued_at timestamptz not null default now(),
  finished integer not null default 0,
  busy integer not null default 0,
  build_status smallint references buildq.build_statuses (code),
  start_time timestamptz,
  stop_time timestamptz,
  is_cached_build boolean not null default false,
  error_msg text,
  size bigint,
  closure_size bigint,
  release_name text,
  attempt integer not null default 0,
  claimed_by text,
  claimed_at timestamptz,
  finished_by text,
  last_step_nr integer not null default 0,
  notification_pending_since timestamptz,
  constraint builds_job_not_empty check (job <> ''),
  constraint builds_system_not_empty check (system <> ''),
  constraint builds_drv_path_not_empty check (drv_path <> ''),
  constraint builds_timeout_positive check (timeout > 0),
  constraint builds_max_silent_positive check (max_silent > 0),
  constraint builds_finished_flag check (finished in (0, 1)),
  constraint builds_busy_flag check (busy in (0, 1)),
  constraint builds_attempt_not_negative check (attempt >= 0),
  constraint builds_size_not_negative check (size >= 0),
  constraint builds_closure_size_not_negative check (closure_size >= 0),
  constraint builds_finished_has_result check (
    finished = 0
    or (
      build_status is not null
      and start_time is not null
      and stop_time is not null
      and stop_time >= start_time
    )
  ),
  constraint builds_unfinished_has_no_result check (
    finished = 1
    or (
      build_status is null
      and start_time is null
      and stop_time is null
      and not is_cached_build
      and error_msg is null
      and size is null
      and closure_size is null
      and release_name is null
      and finished_by is null
    )
  ),
  constraint builds_busy_is_claimed check (
    (busy = 1 and finished = 0 and claimed_by is not null)
    or (busy = 0 and claimed_by is null)
  )
);

comment on table buildq.builds is
'One row per queued build. A build is unfinished (finished = 0, no result '
'columns set) or finished (status, start and stop time set). Only the '
'guarded functions of this schema should move a build between the two.';
comment on column buildq.builds.drv_path is
'Path of the recipe file the build runs. Recipe files are content-addressed, '
'so equal paths mean equal recipes.';
comment on column buildq.builds.global_priority is
'Raised by bump_build to move a build to the front of the queue; '
'dispatch order is global_priority desc, priority desc, id.';
comment on column buildq.builds.timeout is
'Maximum total build time in seconds; null means the runner default.';
comment on column buildq.builds.max_silent is
'Maximum seconds without log output; null means the runner default.';
comment on column buildq.builds.finished is
'0 while queued or running, 1 once a result is recorded.';
comment on column buildq.builds.busy is
'1 while a runner has claimed the build (claimed_by names it), else 0.';
comment on column buildq.builds.build_status is
'Result code from buildq.build_statuses; null while unfinished.';
comment on column buildq.builds.start_time is
'Start of the recorded build; null while unfinished.';
comment on column buildq.builds.stop_time is
'End of the recorded build; null while unfinished.';
comment on column buildq.builds.size is
'Byte size of the output.';
comment on column buildq.builds.closure_size is
'Byte size of the output and everything it references.';
comment on column buildq.builds.attempt is
'Number of claims so far. A finish that names an attempt lands only while '
'the build is still in that attempt, so a late finish cannot overwrite a '
'newer attempt.';
comment on column buildq.builds.claimed_by is
'Runner id holding the build while busy = 1.';
comment on column buildq.builds.finished_by is
'Who recorded the finish: a runner id, or the database user for people.';
comment on column buildq.builds.last_step_nr is
'Highest step number allocated so far; create_build_step increments it '
'under the row lock, so concurrent allocations never collide.';
comment on column buildq.builds.notification_pending_since is
'Set when a finish still has to be handled by a notifier; cleared by '
'ack_build_notification.';

create index builds_queue_idx
on buildq.builds (global_priority desc, priority desc, id)
where finished = 0;

create index builds_drv_path_idx on buildq.builds (drv_path);

create index builds_claimed_by_idx on buildq.builds (claimed_by)
where busy = 1;

create table buildq.build_steps (
  build_id bigint not null references buildq.builds (id) on delete cascade,
  step_nr integer not null,
  type smallint not null default 0,
  drv_path text not null,
  busy integer not null default 1,
  status smallint references buildq.build_statuses (code),
  error_msg text,
  start_time timestamptz not null default now(),
  stop_time timestamptz,
  machine text not null default '',
  system text,
  runner text,
  attempt integer,
  propagated_from bigint references buildq.builds (id) on delete set null,
  overhead integer,
  times_built integer,
  is_non_deterministic boolean,
  primary key (build_id, step_nr),
  constraint build_steps_step_nr_positive check (step_nr > 0),
  constraint build_steps_type check (type in (0, 1)),
  constraint build_steps_busy_not_negative check (busy >= 0),
  constraint build_steps_overhead_not_negative check (overhead >= 0),
  constraint build_steps_times_built_not_negative check (times_built >= 0),
  constraint build_steps_busy_has_no_result check (
    busy = 0 or (status is null and stop_time is null)
  ),
  constraint build_steps_done_has_result check (
    busy <> 0
    or (
      status is not null
      and stop_time is not null
      and stop_time >= start_time
    )
  )
);

comment on table buildq.build_steps is
'Steps of a build: each build or substitution that a runner performs for it. '
'busy is 0 when the step is done, otherwise the phase it is in.';
comment on column buildq.build_steps.type is
'0 for a build, 1 for a substitution.';
comment on column buildq.build_steps.busy is
'0 when done; otherwise the phase: 1 building, higher values for later '
'phases that a runner may report.';
comment on column buildq.build_steps.runner is
'Runner id that performs the step; clear_busy uses it after a crash.';
comment on column buildq.build_steps.attempt is
'Attempt of the build that the step belongs to.';
comment on column buildq.build_steps.propagated_from is
'The build whose failure this step repeats, for cached failures.';
comment on column buildq.build_steps.overhead is
'Milliseconds spent outside the build itself (copying inputs and outputs).';

create index build_steps_busy_idx on buildq.build_steps (runner)
where busy <> 0;
