-- Compare two versions of a row, given as jsonb objects with the same keys.
create or replace function buildq.changed_fields(
  old_row jsonb,
  new_row jsonb
)
returns jsonb
language sql
immutable
parallel safe
security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_object_agg(n.key, n.value)
  from jsonb_each(changed_fields.new_row) as n
  where (changed_fields.old_row -> n.key) is distinct from n.value
$$;

comment on function buildq.changed_fields(jsonb, jsonb) is
'Internal helper of the audit triggers: returns the keys of new_row whose '
'values differ from old_row, with the values of new_row; every key when '
'old_row is null; null when nothing differs or new_row is null. Swap the '
'arguments to get the old values of the changed keys.';

revoke all on function buildq.changed_fields(jsonb, jsonb) from public;
