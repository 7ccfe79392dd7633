-- Validate the id list given to a set-based function.
create or replace function buildq.check_build_ids(
  build_ids bigint[]
)
returns void
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_missing bigint[];
  v_listed text;
begin
  -- The array_position call below raises 0A000 (feature not supported) for
  -- an array of more than one dimension.
  if array_ndims(check_build_ids.build_ids) > 1 then
    raise exception 'build_ids must have one dimension, got dimensions %',
      array_dims(check_build_ids.build_ids)
      using errcode = 'invalid_parameter_value',
        hint = 'Pass a flat list of ids, e.g. array[41, 42].';
  end if;

  if check_build_ids.build_ids is null
    or array_position(check_build_ids.build_ids, null) is not null then
    raise exception 'build_ids must not be null or contain null'
      using errcode = 'null_value_not_allowed',
        hint = 'Pass ids from buildq.builds, e.g. array[41, 42].';
  end if;

  select array_agg(i.id order by i.id)
  into v_missing
  from (select distinct unnest(check_build_ids.build_ids) as id) as i
  where not exists (select from buildq.builds as b where b.id = i.id);

  if v_missing is null then
    return;
  end if;

  if cardinality(v_missing) = 1 then
    raise exception 'build % does not exist', v_missing[1]
      using errcode = 'BQ001',
        hint = 'Check the id in buildq.builds; nothing was changed.';
  end if;

  v_listed := array_to_string(v_missing[1:20], ', ');
  if cardinality(v_missing) > 20 then
    v_listed := v_listed || format(' and %s more', cardinality(v_missing) - 20);
  end if;

  raise exception 'builds % do not exist', v_listed
    using errcode = 'BQ001',
      hint = 'Check the ids in buildq.builds; nothing was changed.';
end;
$$;

comment on function buildq.check_build_ids(bigint[]) is
'Internal helper of the set-based functions: raises 22004 when build_ids is '
'null or contains null, 22023 when it has more than one dimension, and BQ001 '
'naming up to 20 ids that are not in buildq.builds.';

revoke all on function buildq.check_build_ids(bigint[]) from public;
