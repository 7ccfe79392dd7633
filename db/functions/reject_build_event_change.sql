-- Keep buildq.build_events append-only for everyone but its owner.
create or replace function buildq.reject_build_event_change()
returns trigger
language plpgsql
volatile
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_owner oid;
begin
  select c.relowner
  into v_owner
  from pg_catalog.pg_class as c
  where c.oid = tg_relid;

  -- Members of the owning role, superusers among them, act as the owner.
  if pg_catalog.pg_has_role(current_user, v_owner, 'member') then
    if tg_op = 'DELETE' then
      return old;
    end if;

    return new;
  end if;

  raise exception '% on buildq.build_events by role % is rejected',
    tg_op, current_user
    using errcode = 'insufficient_privilege',
      hint = 'The audit trail is append-only; only the owner of '
        'buildq.build_events may update or delete its rows.';
end;
$$;

comment on function buildq.reject_build_event_change() is
'Trigger function on buildq.build_events: raises 42501 for an update, '
'delete or truncate by a role that is not a member of the table''s owner, '
'even one that was granted the privilege.';

revoke all on function buildq.reject_build_event_change() from public;

create or replace trigger build_events_append_only
before update or delete on buildq.build_events
for each row
execute function buildq.reject_build_event_change();

create or replace trigger build_events_no_truncate
before truncate on buildq.build_events
for each statement
execute function buildq.reject_build_event_change();

comment on trigger build_events_append_only on buildq.build_events is
'Rejects updates and deletes by roles other than the owner.';
comment on trigger build_events_no_truncate on buildq.build_events is
'Rejects truncate by roles other than the owner.';
