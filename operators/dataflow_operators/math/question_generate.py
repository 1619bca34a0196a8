"""New math problems from seed problems: variations of one seed, and fusions of two."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, Messages
from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.math._judge import question_of, question_schema


class _MethodGenerator(LLMOperator, Generator):
    """Shared flow: one request per (row, method, sample); one output row per parsed answer."""

    output_name = ""
    injected = ("method",)  # template variables set per request, not read from columns

    def template_columns(self) -> list[str]:
        return [c for c in super().template_columns() if c not in self.injected]

    def json_schema(self) -> dict[str, Any]:
        return question_schema()

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        """{output: the new problem} from `{"question": "..."}`; ParseError for anything else."""
        return {self.output_name: question_of(text)}

    def method_messages(self, row: dict[str, Any], method: str) -> Messages:
        return self.build_messages({**row, "method": method})

    def prepared(self, batch: Batch) -> tuple[list[dict[str, Any]], list[str | None]]:
        rows = self.rows(batch)
        failed = []
        for row in rows:
            nulls = [k for k, v in row.items() if v is None]
            failed.append(f"null `{nulls[0]}` in prompt" if nulls else None)
        return rows, failed

    def generate(self, batch: Batch):
        rows, failed = self.prepared(batch)
        raw: list[str | None] = [None] * len(rows)
        requests, owners = [], []
        for i, row in enumerate(rows):
            if failed[i] is None:
                for method in self.params.methods:
                    requests.append(self.method_messages(row, method))
                    owners.append((i, method))
        answers = self.ask_messages(requests, self.params.n, self.json_schema())
        columns: dict[str, list] = {self.output_name: [], "method": [], "sample": []}
        source: list[int] = []
        produced = [0] * len(rows)
        first_failure: dict[int, tuple[str | None, str | None]] = {}
        for (i, method), per_request in zip(owners, answers, strict=True):
            for k, answer in enumerate(per_request):
                value, why, text = self.parsed(answer, rows[i])
                if why is not None:
                    first_failure.setdefault(i, (why, text))
                    continue
                columns[self.output_name].append(value[self.output_name])
                columns["method"].append(method)
                columns["sample"].append(k)
                source.append(i)
                produced[i] += 1
        for i, (why, text) in first_failure.items():
            if not produced[i]:
                failed[i], raw[i] = why, text
        result = Fanout(columns, pa.array(source, pa.int64()))
        return Partial(result, failed, raw) if any(failed) else result


class MathQuestionGenerator(_MethodGenerator):
    """Write new math problems from each seed problem by varying its numbers, context or difficulty.

    For every seed and every method in `methods`, `n` requests ask for one new problem as a JSON
    object `{"question": "..."}`; every valid answer becomes a row recording its method:
    `numbers` (same structure, new numbers), `context` (same mathematics, new setting),
    `difficulty` (a harder problem on the same topic). New problems have no gold answer: verify
    them (`math_question_verify_filter`) and solve them with self-consistency
    (`math_rejection_sampling_generator` without gold). A seed whose every answer is unusable goes
    to rejects with the reason and the raw answer.

    Inputs:
        question: the seed problem.
    Outputs:
        generated_question: the new problem.
        method: how it was made: numbers, context or difficulty.
        sample: which of the `n` samples of that method it is.
    Params:
        methods: ways to vary the seed, one request each.
        n: problems per seed and method.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (the template can read `{{ method }}`).
    """

    name = "math_question_generator"
    inputs = {"question": Port("the seed problem")}
    outputs = {
        "generated_question": Port("the new problem"),
        "method": Port("numbers, context or difficulty"),
        "sample": Port("sample number for the seed and method", "int64"),
    }
    output_name = "generated_question"
    template_needs = ("question",)
    default_template = default_prompt("math_question_generator", domain="math")

    class Params(LLMParams):
        methods: list[Literal["numbers", "context", "difficulty"]] = Field(
            default_factory=lambda: ["numbers", "context", "difficulty"],
            min_length=1,
            description="Ways to vary each seed, one request per method.",
        )
        n: int = Field(1, ge=1, le=64, description="Problems per seed and method.")


class MathQuestionFusionGenerator(_MethodGenerator):
    """Combine two seed problems into a new one, sequentially, in parallel or conditionally.

    `sequential`: the answer of the first part feeds the second; `parallel`: two independent
    parts whose answers are combined; `conditional`: the first part decides which case of the
    second applies. Each request asks for a JSON object `{"question": "..."}`; every valid answer
    becomes a row recording its method and the partner problem. The partner is the row's
    `second_question` when that input is bound (or a `second_question` column exists); otherwise
    the next row of the same batch (the last row pairs with the first), so results depend on
    the batch size. A batch of one row without a partner column has nothing to pair with.

    Inputs:
        question: the first seed problem.
        second_question: the second seed problem (optional, see above).
    Outputs:
        fused_question: the combined problem.
        method: sequential, parallel or conditional.
        partner_question: the second problem used.
        sample: which of the `n` samples of that method it is.
    Params:
        methods: ways to combine, one request each.
        n: problems per pair and method.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (the template can read `{{ method }}` and `{{ second_question }}`).
    """

    name = "math_question_fusion_generator"
    inputs = {
        "question": Port("the first seed problem"),
        "second_question": Port("the second seed problem (optional)"),
    }
    outputs = {
        "fused_question": Port("the combined problem"),
        "method": Port("sequential, parallel or conditional"),
        "partner_question": Port("the second problem used"),
        "sample": Port("sample number for the pair and method", "int64"),
    }
    output_name = "fused_question"
    template_needs = ("question", "second_question")
    default_template = default_prompt("math_question_fusion_generator", domain="math")

    class Params(LLMParams):
        methods: list[Literal["sequential", "parallel", "conditional"]] = Field(
            default_factory=lambda: ["sequential", "parallel", "conditional"],
            min_length=1,
            description="Ways to combine the two problems, one request per method.",
        )
        n: int = Field(1, ge=1, le=64, description="Problems per pair and method.")

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.partner_bound = "second_question" in (inputs or {})

    def required_columns(self) -> list[str]:
        columns = super().required_columns()
        if not self.partner_bound:
            columns.remove(self.input_columns["second_question"])
        return columns

    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        column = self.input_columns["second_question"]
        if self.partner_bound or column in batch.table.column_names:
            return super().rows(batch)
        table = batch.table
        first = table.column(self.input_columns["question"]).to_pylist()
        n = len(first)
        partners = [first[(i + 1) % n] if n > 1 else None for i in range(n)]
        with_partner = table.append_column(column, pa.array(partners, pa.string()))
        return super().rows(Batch(with_partner, batch.bindings))

    def generate(self, batch: Batch):
        result = super().generate(batch)
        fanout = result.result if isinstance(result, Partial) else result
        rows = self.rows(batch)
        fanout.columns["partner_question"] = [
            rows[i]["second_question"] for i in fanout.source_index.to_pylist()
        ]
        return result
