"""Spider-style SQL hardness (easy / medium / hard / extra), counted on the sqlglot AST.

Spider's evaluation (Yu et al., 2018) sorts a query by three counts taken on its outermost
query; we take them structurally from the AST, so keywords inside strings or names never count:

- component 1: WHERE, GROUP BY, ORDER BY and LIMIT present (1 each), one per joined table
  beyond the first, one per OR and one per LIKE (GLOB too) in the WHERE, HAVING and ON
  conditions;
- component 2 (nesting): one per subquery (in a condition, a FROM or a select list), one per
  extra operand of UNION / INTERSECT / EXCEPT, and, beyond Spider's grammar, one per CTE;
- others: more than one aggregate, more than one selected column, more than one WHERE
  condition, more than one GROUP BY key (1 each), and, beyond Spider, any window function.

Then, as Spider: easy when component1 <= 1, others == 0 and no nesting; medium when there is no
nesting and (others <= 2 and component1 <= 1, or component1 <= 2 and others < 2); hard when
there is no nesting and (others > 2 and component1 <= 2, or 2 < component1 <= 3 and others <= 2),
or component1 <= 1, others == 0 and nesting <= 1; extra otherwise. For a set operation, the
counts are those of its first SELECT, with an ORDER BY or LIMIT applying to the whole result
counted there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dataflow_operators.text2sql._sqltext import parse_one, unwrap

LEVELS = ("easy", "medium", "hard", "extra")


@dataclass(frozen=True)
class Components:
    component1: int
    component2: int
    others: int

    @property
    def level(self) -> str:
        c1, c2, others = self.component1, self.component2, self.others
        if c1 <= 1 and others == 0 and c2 == 0:
            return "easy"
        if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
            return "medium"
        if (
            (others > 2 and c1 <= 2 and c2 == 0)
            or (2 < c1 <= 3 and others <= 2 and c2 == 0)
            or (c1 <= 1 and others == 0 and c2 <= 1)
        ):
            return "hard"
        return "extra"


def _arg(node: Any, *names: str) -> Any:
    # sqlglot renamed some args (`from` -> `from_`, `with` -> `with_`); accept either.
    for name in names:
        value = node.args.get(name)
        if value is not None:
            return value
    return None


def _local(node: Any) -> Iterator[Any]:
    """`node` and its descendants that belong to the same query: subqueries and CTE bodies
    are not entered."""
    from sqlglot import exp

    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in current.iter_expressions():
            if not isinstance(child, (exp.Select, exp.SetOperation, exp.Subquery, exp.With)):
                stack.append(child)


def _subqueries(node: Any) -> int:
    """Subqueries directly inside `node`'s own query (their own nesting is theirs)."""
    from sqlglot import exp

    query = (exp.Select, exp.SetOperation, exp.Subquery)
    return sum(isinstance(child, query) for current in _local(node) for child in current.iter_expressions())


def _set_operands(node: Any) -> list[Any]:
    from sqlglot import exp

    node = unwrap(node)
    if isinstance(node, exp.SetOperation):
        return _set_operands(node.this) + _set_operands(node.expression)
    return [node]


def components(sql: str) -> Components:
    """Spider's three counts for `sql` (raises SqlParseError if sqlglot cannot parse it)."""
    from sqlglot import exp

    tree = unwrap(parse_one(sql))
    operands = _set_operands(tree)
    main = operands[0]
    c2 = len(operands) - 1
    with_ = _arg(tree, "with_", "with") or (_arg(main, "with_", "with") if main is not tree else None)
    if with_ is not None:
        c2 += len(with_.expressions)
    if not isinstance(main, exp.Select):  # VALUES
        return Components(0, c2, 0)

    c1 = 0
    for name in ("where", "group"):
        c1 += main.args.get(name) is not None
    c1 += (main.args.get("order") is not None) or (tree is not main and tree.args.get("order") is not None)
    c1 += (main.args.get("limit") is not None) or (tree is not main and tree.args.get("limit") is not None)
    joins = main.args.get("joins") or []
    c1 += len(joins)
    conditions = [main.args.get("where"), main.args.get("having"), *(j.args.get("on") for j in joins)]
    for condition in filter(None, conditions):
        for node in _local(condition):
            c1 += isinstance(node, (exp.Or, exp.Like, exp.ILike, exp.Glob))

    c2 += _subqueries(main)  # CTE bodies are not entered: counted above

    others = 0
    aggregates = 0
    windows = False
    scopes = [*main.expressions, main.args.get("where"), main.args.get("group"), main.args.get("having")]
    scopes.append(main.args.get("order") or (tree.args.get("order") if tree is not main else None))
    for scope in filter(None, scopes):
        for node in _local(scope):
            if isinstance(node, exp.Window):
                windows = True
            elif isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window):
                aggregates += 1
    others += aggregates > 1
    others += len(main.expressions) > 1
    where = main.args.get("where")
    if where is not None and _condition_count(where.this) > 1:
        others += 1
    group = main.args.get("group")
    if group is not None and len(group.expressions) > 1:
        others += 1
    others += windows
    return Components(c1, c2, others)


def _condition_count(node: Any) -> int:
    from sqlglot import exp

    node = node.unnest() if isinstance(node, exp.Paren) else node
    if isinstance(node, exp.Connector):  # AND / OR
        return _condition_count(node.this) + _condition_count(node.expression)
    return 1


def difficulty(sql: str) -> str:
    return components(sql).level
