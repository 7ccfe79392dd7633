"""Static checks of every PL/pgSQL function in schema buildq with the plpgsql_check extension.

PostgreSQL parses a PL/pgSQL body only when it runs, so a typo in a branch
that no test reaches, an ambiguous name or an unused variable stays hidden
until then. plpgsql_check reads every statement of the body now.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_extension

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "db" / "functions"

# A trigger function is checked once for each table whose triggers call it,
# because plpgsql_check needs the table to resolve NEW and OLD, and the names
# of the transition tables that the triggers declare with `referencing`.
# A trigger function that no trigger calls cannot be checked and is left out.
CHECK_ALL_FUNCTIONS = """
with trigger_tables as (
  select
    t.tgfoid,
    t.tgrelid,
    max(t.tgoldtable) as old_table,
    max(t.tgnewtable) as new_table
  from pg_trigger as t
  where not t.tgisinternal
  group by t.tgfoid, t.tgrelid
)

select
  p.oid::regprocedure::text as function,
  c.lineno,
  c.level,
  c.sqlstate,
  c.message,
  c.detail
from pg_proc as p
inner join pg_language as l on p.prolang = l.oid
left join trigger_tables as tt on p.oid = tt.tgfoid
cross join lateral plpgsql_check_function_tb(
  p.oid,
  relid => coalesce(tt.tgrelid, 0),
  fatal_errors => false,
  oldtable => tt.old_table,
  newtable => tt.new_table,
  all_warnings => true,
  security_warnings => true
) as c
where
  p.pronamespace = 'buildq'::regnamespace
  and l.lanname = 'plpgsql'
  and (p.prorettype <> 'trigger'::regtype or tt.tgrelid is not null)
order by 1, 2
"""


def test_plpgsql_check_finds_nothing(conn):
    require_extension(conn, "plpgsql_check")

    findings = conn.execute(CHECK_ALL_FUNCTIONS).fetchall()

    assert findings == []


def test_plpgsql_check_covers_function_files(conn):
    checked = {
        row[0]
        for row in conn.execute(
            "select p.proname from pg_proc as p join pg_language as l on p.prolang = l.oid"
            " where p.pronamespace = 'buildq'::regnamespace and l.lanname = 'plpgsql'"
        ).fetchall()
    }
    plpgsql_files = {
        path.stem for path in FUNCTIONS_DIR.glob("*.sql") if "language plpgsql" in path.read_text()
    }

    assert plpgsql_files
    assert plpgsql_files <= checked
