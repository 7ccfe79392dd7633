-- Comments for the columns that \d+ showed without one, and corrections of
-- two comments that no longer matched the functions.

insert into buildq.schema_migrations (version, description)
values (8, 'comment_columns');

comment on column buildq.schema_migrations.version is
'Number at the start of the migration file name.';
comment on column buildq.schema_migrations.description is
'Rest of the migration file name, without .sql.';
comment on column buildq.schema_migrations.checksum is
'SHA-256 of the file as `buildq migrate` applied or adopted it; null for a '
'file applied by hand with psql until the next `buildq migrate`.';
comment on column buildq.schema_migrations.applied_at is
'Start of the transaction that applied the file.';

comment on column buildq.build_statuses.code is
'Hydra''s numeric result code; 5 is obsolete and absent.';
comment on column buildq.build_statuses.name is
'Short name shown by the views and in notices.';
comment on column buildq.build_statuses.description is
'What the code means.';
comment on column buildq.build_statuses.applies_to_builds is
'Whether finish_build accepts the code (false for 8, cached failure).';
comment on column buildq.build_statuses.applies_to_steps is
'Whether finish_build_step accepts the code (false for 2, dependency failed).';

comment on column buildq.builds.id is
'Build id, from an identity sequence. Ids are handed out in a different '
'order than transactions commit, so never scan the queue with id > last_seen.';
comment on column buildq.builds.job is
'Name of the job in its jobset.';
comment on column buildq.builds.system is
'Platform the build needs, e.g. x86_64-linux; a runner claims only the '
'systems it was started for.';
comment on column buildq.builds.priority is
'Priority of the job; higher runs first among equal global priorities.';
comment on column buildq.builds.queued_at is
'When queue_build inserted the build.';
comment on column buildq.builds.is_cached_build is
'True when the result was copied from an earlier build of the same recipe '
'instead of being built.';
comment on column buildq.builds.error_msg is
'Why the build failed or was aborted or cancelled; null while unfinished.';
comment on column buildq.builds.release_name is
'Contents of $out/nix-support/hydra-release-name, if the build wrote one.';
comment on column buildq.builds.claimed_at is
'When the current claim started; null while not busy.';
comment on column buildq.builds.attempt is
'Incremented by every claim (claim_builds) and every restart '
'(restart_build), so a restarted build''s next run is two higher than the '
'last one. A finish that names an attempt lands only while the build is '
'still in that attempt, so a late finish cannot overwrite a newer attempt.';

comment on column buildq.build_steps.build_id is
'Build the step belongs to.';
comment on column buildq.build_steps.step_nr is
'Number of the step within its build, 1 for the first; allocated by '
'create_build_step.';
comment on column buildq.build_steps.drv_path is
'Recipe the step builds; the build''s own recipe unless the step builds a '
'dependency.';
comment on column buildq.build_steps.status is
'Result code from buildq.build_statuses; null while busy.';
comment on column buildq.build_steps.error_msg is
'Why the step failed or was aborted.';
comment on column buildq.build_steps.start_time is
'When the step was created.';
comment on column buildq.build_steps.stop_time is
'When the step finished; null while busy.';
comment on column buildq.build_steps.machine is
'Machine that ran the step; empty when it ran on the runner''s host.';
comment on column buildq.build_steps.system is
'Platform of the step; the build''s system unless given.';
comment on column buildq.build_steps.times_built is
'How often the recipe was built for this step, when a runner repeats '
'builds to check determinism.';
comment on column buildq.build_steps.is_non_deterministic is
'True when repeated builds of the step gave different outputs.';

comment on column buildq.role_names.purpose is
'runner, operator or reader: which set of grants the role receives.';
comment on column buildq.role_names.role_name is
'Name of the role on this server, chosen when migration 4 ran.';

comment on column buildq.build_events.id is
'Order of the events; replaying a build''s events by id rebuilds its row.';
comment on column buildq.build_events.event is
'Kind of change. Builds: queued, claimed, started (first step of an '
'attempt), step_allocated (later steps), released (returned to the queue by '
'clear_busy or release_build), bumped, finished, aborted (status 3), '
'cancelled (status 4), restarted, notification_acked, updated (any other '
'change), deleted. Steps: step_started, step_finished, step_updated, '
'step_deleted. snapshot: the row as it was when the trail was created, or '
'after a key change.';

comment on column buildq.running_builds.runner is
'Runner id that claimed the build.';
comment on column buildq.running_builds.step_nr is
'Newest busy step of the build; null before its first step starts.';
comment on column buildq.running_builds.step_drv_path is
'Recipe of that step.';
comment on column buildq.running_builds.step_machine is
'Machine running that step.';
comment on column buildq.running_builds.step_started_at is
'When that step started.';

comment on column buildq.recent_failures.failed_step_nr is
'Newest step of the build that ended with a status other than 0.';
comment on column buildq.recent_failures.failed_step_drv_path is
'Recipe of that step.';
comment on column buildq.recent_failures.failed_step_error_msg is
'Error message of that step.';
comment on column buildq.recent_failures.failed_step_machine is
'Machine that ran that step.';
comment on column buildq.recent_failures.status is
'Name of build_status.';

comment on column buildq.status_counts.state is
'queued, running, or the name of a build status.';
comment on column buildq.status_counts.build_status is
'Status code for finished states; null for queued and running.';
comment on column buildq.status_counts.builds is
'Number of builds in the state.';

comment on column buildq.build_history.event_id is
'buildq.build_events.id: the order of the events.';
comment on column buildq.build_history.event is
'Kind of change; see buildq.build_events.event.';
comment on column buildq.build_history.old_state is
'State before the change: queued, running, or finished with its status.';
comment on column buildq.build_history.new_state is
'State after the change.';
comment on column buildq.build_history.db_user is
'session_user of the change: the login, even inside security definer '
'functions.';
