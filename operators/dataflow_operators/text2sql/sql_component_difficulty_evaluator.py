"""Label SQL easy / medium / hard / extra from its structure (Spider's hardness rule)."""

from __future__ import annotations

from dataflow_cli.operator import Batch, Evaluator, Partial, Port
from dataflow_operators.text2sql._difficulty import components
from dataflow_operators.text2sql._sqltext import SqlParseError


class SqlComponentDifficultyEvaluator(Evaluator):
    """Label each SQL query easy, medium, hard or extra by counting its components.

    Spider's hardness rule (Yu et al., 2018), counted on the sqlglot AST (SQLite dialect), so a
    keyword inside a string or a name never counts: component 1 is WHERE, GROUP BY, ORDER BY,
    LIMIT, each join, each OR and each LIKE of the outermost query; component 2 is its nesting
    (subqueries, extra UNION/INTERSECT/EXCEPT operands and, beyond Spider's grammar, CTEs);
    "others" are more than one aggregate, selected column, WHERE condition or GROUP BY key, and,
    beyond Spider, window functions. Few components and no nesting is easy; the thresholds
    between the levels are Spider's (see `dataflow_operators.text2sql._difficulty`). SQL that
    sqlglot cannot parse is rejected ("sql parse error").

    Inputs:
        sql: the SQL to label.
    Outputs:
        difficulty: easy, medium, hard or extra.
        components: the three counts as "component1/component2/others", e.g. "2/0/1".
    Params:
        (none)
    """

    name = "sql_component_difficulty_evaluator"
    inputs = {"sql": Port("SQL to label")}
    outputs = {
        "difficulty": Port("easy, medium, hard or extra"),
        "components": Port("component1/component2/others counts"),
    }
    requires = ("sqlglot",)

    def evaluate(self, batch: Batch):
        labels, counts, failed = [], [], []
        for sql in batch.values("sql"):
            try:
                found = components(sql) if isinstance(sql, str) else None
            except SqlParseError:
                found = None
            labels.append(found.level if found else None)
            counts.append(f"{found.component1}/{found.component2}/{found.others}" if found else None)
            failed.append(None if found else ("sql parse error" if isinstance(sql, str) else "sql empty"))
        result = {"difficulty": labels, "components": counts}
        return Partial(result, failed) if any(failed) else result
