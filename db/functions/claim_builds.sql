-- Hand queued builds to one runner, never the same build to two runners.
create or replace function buildq.claim_builds(
  runner text,
  max_count integer default 1,
  systems text[] default null
)
returns table (
  id bigint,
  attempt integer,
  job text,
  system text,
  drv_path text,
  priority integer,
  global_priority integer,
  timeout integer,
  max_silent integer,
  queued_at timestamptz
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if coalesce(claim_builds.runner, '') = '' then
    raise exception 'runner must not be empty'
      using errcode = 'invalid_parameter_value',
        hint = 'Pass the id of the runner that claims, e.g. its host name.';
  end if;

  if claim_builds.max_count is null or claim_builds.max_count < 1 then
    raise exception 'max_count % must be at least 1',
      quote_nullable(claim_builds.max_count)
      using errcode = 'invalid_parameter_value',
        hint = 'Pass how many builds the runner can start now.';
  end if;

  -- With skip locked, concurrent claimers pass over each other's rows instead
  -- of waiting behind them. For update re-checks finished and busy on the
  -- newest row version, so a build finished meanwhile is never handed out.
  return query
  with picked as (
    select q.id
    from buildq.builds as q
    where
      q.finished = 0
      and q.busy = 0
      and (claim_builds.systems is null or q.system = any(claim_builds.systems))
    order by q.global_priority desc, q.priority desc, q.id
    limit claim_builds.max_count
    for update skip locked
  )

  update buildq.builds as b
  set
    busy = 1,
    claimed_by = claim_builds.runner,
    claimed_at = clock_timestamp(),
    attempt = b.attempt + 1
  from picked
  where b.id = picked.id
  returning
    b.id,
    b.attempt,
    b.job,
    b.system,
    b.drv_path,
    b.priority,
    b.global_priority,
    b.timeout,
    b.max_silent,
    b.queued_at;
end;
$$;

comment on function buildq.claim_builds(text, integer, text[]) is
'Claims up to max_count queued builds for a runner, in dispatch order '
'(global_priority desc, priority desc, id), and returns them with their new '
'attempt. Sets busy, claimed_by and claimed_at and increments attempt. '
'Concurrent claimers never receive the same build. systems, when given, '
'limits the claim to builds for those systems.';

revoke all on function buildq.claim_builds(text, integer, text[]) from public;

select buildq.grant_execute('buildq.claim_builds(text, integer, text[])', 'runner');
