-- Rules that every object of schema buildq follows, present and future:
-- pinned search_path, no execute for public, and a comment on everything
-- that \df+ and \d+ show.
begin;
set local client_min_messages = warning;
select plan(6);

select is_empty(
  $$select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    where
      p.pronamespace = 'buildq'::regnamespace
      and p.prosecdef
      and not coalesce(p.proconfig @> array['search_path=pg_catalog, pg_temp'], false)$$,
  'every security definer function pins search_path to pg_catalog, pg_temp'
);

select is_empty(
  $$select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    where
      p.pronamespace = 'buildq'::regnamespace
      and (
        p.proacl is null
        or exists (
          select
          from aclexplode(p.proacl) as a
          where a.grantee = 0 and a.privilege_type = 'EXECUTE'
        )
      )$$,
  'no function of buildq is executable by public'
);

select is_empty(
  $$select p.oid::regprocedure::text
    from pg_catalog.pg_proc as p
    where
      p.pronamespace = 'buildq'::regnamespace
      and obj_description(p.oid, 'pg_proc') is null$$,
  'every function of buildq has a comment'
);

select is_empty(
  $$select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where
      c.relnamespace = 'buildq'::regnamespace
      and c.relkind in ('r', 'v', 'm', 'p')
      and obj_description(c.oid, 'pg_class') is null$$,
  'every table and view of buildq has a comment'
);

select is_empty(
  $$select t.tgname::text
    from pg_catalog.pg_trigger as t
    inner join pg_catalog.pg_class as c on t.tgrelid = c.oid
    where
      c.relnamespace = 'buildq'::regnamespace
      and not t.tgisinternal
      and obj_description(t.oid, 'pg_trigger') is null$$,
  'every trigger on a buildq table has a comment'
);

select is_empty(
  $$select c.oid::regclass::text
    from pg_catalog.pg_class as c
    where
      c.relnamespace = 'buildq'::regnamespace
      and c.relkind in ('r', 'p')
      and exists (
        select
        from aclexplode(c.relacl) as a
        where a.grantee = 0
      )$$,
  'no table of buildq grants anything to public'
);

select * from finish();
rollback;
