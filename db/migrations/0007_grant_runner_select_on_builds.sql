-- Let the runner role read buildq.builds.
--
-- The queue runner scans the queue, checks whether it is idle and lists the
-- builds claimed under its id with plain selects on buildq.builds. Granting
-- select on that one table, rather than the reader role, keeps the runner
-- away from the audit trail and the views.

insert into buildq.schema_migrations (version, description)
values (7, 'grant_runner_select_on_builds');

do $$
declare
  v_runner text;
begin
  select r.role_name
  into strict v_runner
  from buildq.role_names as r
  where r.purpose = 'runner';

  execute format('grant select on buildq.builds to %I', v_runner);
end;
$$;
