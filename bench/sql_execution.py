"""Throughput of `sql_execution_filter` and the worst overrun of the guard's time limit.

    .venv/bin/python bench/sql_execution.py [--queries 20000] [--batch 1000] [--workers 2]

20k queries generated from templates over the sample databases (filters, joins, grouping,
ordering, subqueries, set operations, some with errors) run through `sql_execution_filter` in
batches on `--workers` threads, as the local executor runs a stage (each thread has its own
connections, and with process isolation its own worker process, so both cores work). Then
runaway queries (endless recursive CTEs, huge cartesian joins, and, under process isolation,
single SQLite steps that never end) run under a 0.5 s limit; the worst time past the limit is
reported. The databases are hashed before and after: they must not change.
Goals: >= 2,000 queries/s on 2 cores; overrun <= 100 ms.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "operators"))
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
from dataflow_operators.text2sql.sql_execution_filter import SqlExecutionFilter  # noqa: E402

from dataflow_cli.engine.executor import ordered_map  # noqa: E402
from dataflow_cli.operator import Batch  # noqa: E402
from dataflow_cli.sandbox.sql import SqlGuard, SqlLimits, hash_file  # noqa: E402

SAMPLES = REPO / "pipelines" / "text2sql_generate" / "databases"

TEMPLATES = {
    "bookstore": [
        "SELECT title, price FROM books WHERE price > {price}",
        "SELECT count(*) FROM books WHERE genre = '{genre}'",
        "SELECT genre, avg(price) FROM books GROUP BY genre HAVING count(*) > {small}",
        "SELECT a.name, count(*) FROM authors AS a JOIN books AS b ON b.author_id = a.author_id "
        "WHERE b.published_year > {year} GROUP BY a.author_id ORDER BY count(*) DESC LIMIT {small}",
        "SELECT c.name FROM customers AS c WHERE c.customer_id IN "
        "(SELECT customer_id FROM orders WHERE status = '{status}')",
        "SELECT o.order_id, sum(oi.quantity * oi.unit_price) FROM orders AS o JOIN order_items AS oi "
        "ON oi.order_id = o.order_id WHERE o.order_date > '{year}-01-01' GROUP BY o.order_id",
        "SELECT name FROM authors WHERE country = '{country}' UNION SELECT name FROM customers WHERE country = '{country}'",
        "SELECT title FROM books ORDER BY price DESC, book_id LIMIT {small}",
        "SELECT nope FROM books WHERE price > {price}",  # an error
    ],
    "university": [
        "SELECT name, gpa FROM students WHERE gpa > {gpa} ORDER BY gpa DESC",
        "SELECT d.name, count(*) FROM students AS s JOIN departments AS d ON d.dept_id = s.dept_id GROUP BY d.dept_id",
        "SELECT course_id, avg(score) FROM enrollments WHERE grade IS NOT NULL GROUP BY course_id",
        "SELECT name FROM instructors WHERE salary > (SELECT avg(salary) FROM instructors) AND hire_year > {year}",
        "SELECT student_id, rank() OVER (ORDER BY gpa DESC) FROM students WHERE enrollment_year = {enrolled}",
        "WITH a AS (SELECT student_id FROM enrollments WHERE grade = 'A') SELECT count(DISTINCT student_id) FROM a",
    ],
    "world": [
        "SELECT name FROM countries WHERE population > {population}",
        "SELECT co.name, count(*) FROM countries AS co JOIN cities AS ci ON ci.country_code = co.code "
        "GROUP BY co.code ORDER BY 2 DESC LIMIT {small}",
        "SELECT continent, sum(population) FROM countries GROUP BY continent",
        "SELECT language FROM languages WHERE is_official = 1 INTERSECT SELECT language FROM languages "
        "WHERE percentage > {share}",
        "SELECT name FROM cities WHERE population IS NULL OR population < {small}000",
    ],
}
VALUES = {
    "price": [9.99, 12, 19.95, 24],
    "genre": ["fiction", "poetry", "science", "history"],
    "small": [1, 2, 3, 5, 10],
    "year": [1990, 2000, 2010, 2020],
    "status": ["shipped", "cancelled", "pending"],
    "country": ["Portugal", "Japan", "Poland", "Türkiye"],
    "gpa": [2.5, 3.0, 3.5],
    "enrolled": [2018, 2020, 2022],
    "population": [100000000, 500000000],
    "share": [10, 30, 50],
}

RUNAWAY = [
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x FROM c) SELECT max(x) FROM c",
    "SELECT count(*) FROM books a, books b, books c, books d, books e",
    "SELECT count(*) FROM order_items a, order_items b, order_items c WHERE a.quantity < b.quantity",
    "SELECT a.title FROM books a, books b, books c ORDER BY random() LIMIT 1",
]
SINGLE_STEP = [
    "SELECT printf('%.*c', 1000000000, 'x')",
    "SELECT instr(printf('%.*c', 900000, 'a'), printf('%.*c', 450000, 'a') || 'b')",
    "SELECT replace(printf('%.*c', 900000, 'a'), printf('%.*c', 400000, 'a') || 'b', 'c')",
]


def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    queries = []
    for _ in range(n):
        db_id = rng.choice(list(TEMPLATES))
        template = rng.choice(TEMPLATES[db_id])
        values = {k: rng.choice(v) for k, v in VALUES.items()}
        queries.append((template.format(**values), db_id))
    return queries


def throughput(root: Path, queries: list[tuple[str, str]], batch: int, workers: int, isolation: str) -> None:
    op = SqlExecutionFilter(SqlExecutionFilter.Params(db_root=str(root), isolation=isolation))
    batches = [
        Batch(
            pa.table(
                {
                    "sql": [q for q, _ in queries[i : i + batch]],
                    "db_id": [d for _, d in queries[i : i + batch]],
                }
            )
        )
        for i in range(0, len(queries), batch)
    ]
    # Warm up: worker processes start and connections open once per thread and database.
    list(ordered_map(op.filter, batches[: workers * 2], workers))
    started = time.perf_counter()
    kept = 0
    reasons: dict[str, int] = {}
    for verdict in ordered_map(op.filter, batches, workers):
        kept += sum(bool(k) for k in verdict.keep)
        for reason in verdict.reason.to_pylist():
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
    seconds = time.perf_counter() - started
    print(
        f"isolation={isolation:7s} {len(queries)} queries in {seconds:.2f} s on {workers} threads: "
        f"{len(queries) / seconds:,.0f} queries/s (kept {kept}, dropped {reasons})"
    )
    op.guard.close()


def overrun(root: Path, isolation: str, limit: float = 0.5) -> None:
    guard = SqlGuard(SqlLimits(timeout=limit), isolation=isolation)
    path = root / "bookstore.sqlite"
    guard.execute(path, "SELECT 1")
    queries = RUNAWAY + (SINGLE_STEP if isolation == "process" else [])
    worst = 0.0
    for sql in queries * 3:
        guard.execute(path, "SELECT 1")  # a killed worker restarts outside the timed query
        started = time.perf_counter()
        result = guard.execute(path, sql)
        elapsed = time.perf_counter() - started
        assert result.error == "sql timeout", (sql, result)
        worst = max(worst, elapsed - limit)
    print(
        f"isolation={isolation:7s} {len(queries) * 3} runaway queries, limit {limit} s: worst overrun {worst * 1000:.1f} ms"
    )
    guard.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "databases"
        shutil.copytree(SAMPLES, root)
        before = {p.name: hash_file(p) for p in root.iterdir()}
        queries = generate(args.queries)
        for isolation in ("process", "thread"):
            throughput(root, queries, args.batch, args.workers, isolation)
        for isolation in ("process", "thread"):
            overrun(root, isolation)
        after = {p.name: hash_file(p) for p in root.iterdir()}
        print("databases byte-identical:", after == before)
        assert after == before


if __name__ == "__main__":
    main()
