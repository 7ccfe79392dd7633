-- Roles for the three kinds of client of buildq, none of which can log in:
--   runner    executes the functions that runners call (claim, finish, ...);
--   operator  is a member of runner and reader and executes the functions
--             for people (cancel, restart, bump);
--   reader    reads the views and tables.
-- No role gets insert, update, delete or truncate on a table: every change
-- goes through the security definer functions of this schema.
--
-- Role names default to buildq_runner, buildq_operator and buildq_reader.
-- To choose others, set the custom settings buildq.runner_role,
-- buildq.operator_role and buildq.reader_role for the migrating session,
-- e.g. PGOPTIONS='-c buildq.runner_role=ci_runner' buildq migrate ...
-- Roles belong to the whole server, so an existing role of the chosen name is
-- reused; this lets many databases on one server share the roles.
--
-- buildq.role_names records the chosen names. Function files grant with
-- buildq.grant_execute(signature, purpose), which reads that table, so the
-- grants follow the chosen names on every re-apply.
-- The file holds no begin/commit because the caller supplies the transaction.

insert into buildq.schema_migrations (version, description)
values (4, 'create_roles');

create table buildq.role_names (
  purpose text primary key,
  role_name text not null unique,
  constraint role_names_purpose_known check (
    purpose in ('runner', 'operator', 'reader')
  ),
  constraint role_names_role_name_not_empty check (role_name <> '')
);

comment on table buildq.role_names is
'Database roles chosen for this database by migration 4, one per purpose '
'(runner, operator, reader). buildq.grant_execute grants to these names. '
'After renaming a role with alter role, update its row here.';

do $$
declare
  v_purpose text;
  v_role text;
  v_existing record;
  v_descriptions constant jsonb := jsonb_build_object(
    'runner', 'buildq: may execute the functions that queue runners call',
    'operator', 'buildq: may execute the functions for people, such as '
    || 'cancel_build; member of the runner and reader roles',
    'reader', 'buildq: may read the views and tables of schema buildq'
  );
begin
  foreach v_purpose in array array['runner', 'operator', 'reader'] loop
    v_role := coalesce(
      nullif(current_setting('buildq.' || v_purpose || '_role', true), ''),
      'buildq_' || v_purpose
    );

    if octet_length(v_role) > 63 then
      raise exception 'role name % in buildq.%_role is longer than 63 bytes',
        v_role, v_purpose
        using errcode = 'invalid_parameter_value',
          hint = 'Choose a shorter name; PostgreSQL truncates longer ones.';
    end if;

    if exists (select from buildq.role_names as r where r.role_name = v_role) then
      raise exception 'role name % in buildq.%_role is already chosen for '
        'another purpose', v_role, v_purpose
        using errcode = 'invalid_parameter_value',
          hint = 'Choose distinct names for buildq.runner_role, '
            'buildq.operator_role and buildq.reader_role.';
    end if;

    select r.rolsuper, r.rolcanlogin, r.rolbypassrls
    into v_existing
    from pg_catalog.pg_roles as r
    where r.rolname = v_role;

    if not found then
      begin
        execute format('create role %I nologin', v_role);
        execute format(
          'comment on role %I is %L', v_role, v_descriptions ->> v_purpose
        );
      exception when duplicate_object or unique_violation then
        -- The migration of another database on this server created the
        -- role after our look-up; that role is just as good.
        raise notice 'role % was created concurrently; reusing it', v_role;
      end;
    elsif v_existing.rolsuper or v_existing.rolbypassrls then
      raise exception 'role % in buildq.%_role is a superuser or bypasses '
        'row security', v_role, v_purpose
        using errcode = 'invalid_parameter_value',
          hint = 'Choose a role without superuser rights, or a new name.';
    elsif v_existing.rolcanlogin then
      raise notice 'role % already exists and can log in; buildq grants '
        'to it as it is', v_role;
    end if;

    insert into buildq.role_names (purpose, role_name)
    values (v_purpose, v_role);

    execute format('grant usage on schema buildq to %I', v_role);
  end loop;

  foreach v_purpose in array array['runner', 'reader'] loop
    begin
      execute format(
        'grant %I to %I',
        (select r.role_name from buildq.role_names as r where r.purpose = v_purpose),
        (select r.role_name from buildq.role_names as r where r.purpose = 'operator')
      );
    exception when unique_violation then
      raise notice 'membership of the operator role in the % role was '
        'granted concurrently', v_purpose;
    end;
  end loop;
end;
$$;

create function buildq.grant_execute(
  signature regprocedure,
  purpose text
)
returns void
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_role text;
begin
  select r.role_name
  into v_role
  from buildq.role_names as r
  where r.purpose = grant_execute.purpose;

  if not found then
    raise exception 'purpose % is unknown', quote_nullable(grant_execute.purpose)
      using errcode = 'invalid_parameter_value',
        hint = 'Pass runner, operator or reader (see buildq.role_names).';
  end if;

  execute format(
    'grant execute on function %s to %I', grant_execute.signature, v_role
  );
end;
$$;

comment on function buildq.grant_execute(regprocedure, text) is
'Grants execute on a function to the role chosen for purpose (runner, '
'operator or reader) in buildq.role_names. Function files call it after '
'their revoke from public, e.g. select buildq.grant_execute('
'''buildq.queue_build(text, text, text, integer, integer, integer, integer)'', '
'''runner''); so that the grant survives every re-apply. Raises 22023 for an '
'unknown purpose. Defined in a migration because function files, applied '
'in file-name order, need it before the first of them runs.';

revoke all on function buildq.grant_execute(regprocedure, text) from public;
