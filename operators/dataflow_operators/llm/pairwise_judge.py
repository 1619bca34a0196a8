"""Compare two answers with an LLM judge, in both orders."""

from __future__ import annotations

import re
from typing import Any

from dataflow_cli.llm.operator import LLMOperator, ParseError
from dataflow_cli.operator import Batch, Evaluator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt

_VERDICT_LINE = re.compile(
    r"^[^a-z0-9\n]*(?:the\s+)?(?:final\s+)?(?:winner|verdict)\b[^a-z0-9\n]*(?:is\s+)?"
    r"(?:(?:a\s+)?(tie|draw)|(?:(?:response|assistant|answer|output)\b)?[^a-z0-9\n]*\b([ab]))\b",
    re.IGNORECASE | re.MULTILINE,
)


_VERDICT_BARE = re.compile(
    r"^[^a-z0-9]*(?:(?:response|assistant|answer|output)\s+)?(a|b|tie|draw)[^a-z0-9]*$", re.I
)


_UNSWAP = {"a": "b", "b": "a", "tie": "tie"}


A_WINS = {"a": 1.0, "b": 0.0, "tie": 0.5}


def parse_verdict(text: str) -> str:
    """ "a", "b" or "tie" from a judge's answer: its last `Winner: A|B|tie` line (also `Winner is
    Response B`, `**Winner:** [[A]]`, `Final verdict: tie`), or an answer that is only a verdict."""
    matches = list(_VERDICT_LINE.finditer(text))
    if matches:
        tie, letter = matches[-1].groups()
        return "tie" if tie else letter.lower()
    bare = _VERDICT_BARE.match(text.strip())
    if bare:
        word = bare.group(1).lower()
        return "tie" if word in ("tie", "draw") else word
    raise ParseError("no `Winner: A|B|tie` line")


class PairwiseJudgeEvaluator(LLMOperator, Evaluator):
    """Judge which of two responses is better, asking twice with the order swapped.

    LLM judges favour a position, so every row is judged twice: with `response_a` shown first,
    then with `response_b` shown first. The second verdict is mapped back to the original order;
    when the two verdicts agree that is the preference, otherwise (or when the judge says so) it
    is a tie. The default template asks for a short explanation ending in a line
    `Winner: A`, `Winner: B` or `Winner: tie`; a custom template must use `{{ response_a }}` and
    `{{ response_b }}` (the response shown first and second) and may use `{{ question }}`.
    `question` is optional: when the stage does not bind it and there is no `question` column,
    or the value is null, the template gets "" (test it with `{% if question %}`). A row whose
    either request or verdict fails goes to rejects with the reason and that raw answer.

    Inputs:
        question: the question both responses answer (optional).
        response_a: the first response.
        response_b: the second response.
    Outputs:
        preference: "a", "b" or "tie".
        a_wins: 1.0 when `response_a` is preferred, 0.0 when `response_b` is, 0.5 for a tie.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "pairwise_judge_evaluator"
    inputs = {
        "question": Port(
            "the question both responses answer (optional: omitted from the prompt when absent)"
        ),
        "response_a": Port("the first response"),
        "response_b": Port("the second response"),
    }
    outputs = {
        "preference": Port('"a", "b" or "tie"'),
        "a_wins": Port("1.0 if response_a wins, 0.0 if response_b wins, 0.5 for a tie", "float64"),
    }
    template_needs = ("response_a", "response_b")

    default_template = default_prompt("pairwise_judge_evaluator")

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.question_bound = "question" in (inputs or {})

    def required_columns(self) -> list[str]:
        columns = super().required_columns()
        if not self.question_bound:  # optional: used when the batch has it
            columns.remove(self.input_columns["question"])
        return columns

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        """The verdict for the order shown in `row`: {"preference": "a" | "b" | "tie"}."""
        return {"preference": parse_verdict(text)}

    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        """Rows for the template: `question` is "" when absent or null."""
        table = batch.table
        n = batch.num_rows
        out: dict[str, list] = {}
        for logical, column in self.input_columns.items():
            if logical == "question" and column not in table.column_names and not self.question_bound:
                out[logical] = [""] * n
            else:
                values = table.column(column).to_pylist()
                out[logical] = ["" if v is None else v for v in values] if logical == "question" else values
        for column in self.template_columns():
            if column not in out:
                out[column] = table.column(column).to_pylist()
        names = list(out)
        return [dict(zip(names, values, strict=True)) for values in zip(*out.values(), strict=True)]

    def evaluate(self, batch: Batch):
        rows = self.rows(batch)
        swapped = [{**row, "response_a": row["response_b"], "response_b": row["response_a"]} for row in rows]
        answers = self.ask_rows([shown for pair in zip(rows, swapped, strict=True) for shown in pair])
        preference: list[str | None] = []
        failed: list[str | None] = []
        raw: list[str | None] = []
        for row, flipped, shown, reversed_ in zip(rows, swapped, answers[::2], answers[1::2], strict=True):
            (first, why, text), (second, why2, text2) = (
                self.parsed(shown[0], row),
                self.parsed(reversed_[0], flipped),
            )
            if why or why2:
                preference.append(None), failed.append(why or why2), raw.append(text if why else text2)
                continue
            a, b = first["preference"], _UNSWAP[second["preference"]]
            preference.append(a if a == b else "tie"), failed.append(None), raw.append(None)
        result = {
            "preference": preference,
            "a_wins": [None if p is None else A_WINS[p] for p in preference],
        }
        return Partial(result, failed, raw) if any(failed) else result
