"""Step-by-step solutions ending in `\\boxed{}`: plain sampling, and rejection sampling."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field, model_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.llm.types import Answer, Request
from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.math.answer_verify import VerifyParams, make_verifier
from dataflow_operators.math.verifier import majority


def solution_of(text: str) -> str:
    solution = text.strip()
    if not solution:
        raise ParseError("empty solution", bare=True)
    return solution


class MathAnswerGenerator(LLMOperator, Generator):
    """Solve each problem step by step, ending in `\\boxed{}`, with `n` samples per problem.

    Every sample becomes a row with its number (ids `<parent>.<k>`), or, with `collect`, the
    samples stay in the problem's row as one list (the input of
    `math_self_consistency_evaluator`). The default prompt asks for the final answer as
    `\\boxed{...}` on the last line; nothing is checked here (see `boxed_answer_format_filter`
    and `math_answer_verify_filter`). An empty answer is a failure, kept in rejects.

    Inputs:
        question: the problem.
    Outputs:
        solution: the solution (without `collect`).
        sample: its sample number (without `collect`).
        solutions: every sample's solution, in order (with `collect`; failed samples left out).
    Params:
        n: solutions per problem.
        collect: keep the samples in one list column instead of one row each.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "math_answer_generator"
    inputs = {"question": Port("the problem")}
    outputs = {
        "solution": Port("a step-by-step solution"),
        "sample": Port("sample number", "int64"),
        "solutions": Port("all samples' solutions", "list<string>"),
    }
    template_needs = ("question",)
    default_template = default_prompt("math_answer_generator", domain="math")

    class Params(LLMParams):
        n: int = Field(1, ge=1, le=256, description="Solutions per problem.")
        collect: bool = Field(
            False, description="Keep the samples in one list column instead of one row each."
        )

    def active_outputs(self) -> list[str]:
        return ["solutions"] if self.params.collect else ["solution", "sample"]

    def parse(self, text: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        """[{"solution": text}]: a list, so every sample is its own numbered row."""
        return [{"solution": solution_of(text)}]

    def generate(self, batch: Batch):
        if not self.params.collect:
            return super().generate(batch)
        rows, answers = self.ask(batch, self.params.n)
        solutions, failed, raw = [], [], []
        for row, per_row in zip(rows, answers, strict=True):
            outcomes = [self.parsed(a, row) for a in per_row]
            good = [value[0]["solution"] for value, why, _ in outcomes if why is None]
            bad = next((o for o in outcomes if o[1] is not None), (None, None, None))
            solutions.append(good)
            failed.append(None if good else bad[1])
            raw.append(None if good else bad[2])
        result = {"solutions": pa.array(solutions, pa.list_(pa.string()))}
        return Partial(result, failed, raw) if any(failed) else result


class MathRejectionSamplingGenerator(LLMOperator, Generator):
    """Sample up to `k` solutions per problem until `m` verify against the gold answer; keep those.

    The standard way to build correct chains of thought: solutions are drawn in rounds of
    `round_size` (each sample its own cached request, numbered across rounds), their final answers
    are checked with the same rules as `math_answer_verify_filter`, and sampling stops for a
    problem as soon as `m` verified solutions exist or `k` were drawn. Each kept solution becomes
    a row recording how many samples were tried and how many verified.

    A problem without a gold answer (gold null, or the input unbound and no `gold` column) is
    solved by self-consistency: all `k` samples are drawn at once, and their majority answer
    becomes the reference when at least `min_votes` samples and a share `min_agreement` of them
    agree; the first `m` solutions with that answer are kept.

    A problem with no kept solution goes to rejects ("no verified solution in 8 samples", or
    "no majority answer", or the LLM failure when every request failed) with the last sample's
    text as the raw answer.

    Inputs:
        question: the problem.
        gold: its gold answer (optional, see above).
    Outputs:
        solution: a verified solution.
        extracted_answer: its final answer.
        reference_answer: what it was verified against: the gold answer, or the majority answer.
        reference_source: "gold" or "majority".
        tries: samples drawn for the problem.
        verified: samples that verified (may exceed `m` when a round ends past it).
        agreement: verified / tries.
        sample: the kept solution's sample number.
    Params:
        k: most samples per problem.
        m: verified solutions wanted per problem.
        round_size: samples drawn per problem per round (default `m`).
        min_agreement: share of samples that must agree on a majority answer (no gold).
        min_votes: samples that must agree on a majority answer (no gold).
        rel_tol, percent, strip_units, bare_max_chars, time_limit, workers, memory_mb: see `math_answer_verify_filter`.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "math_rejection_sampling_generator"
    requires = ("math-verify",)
    inputs = {"question": Port("the problem"), "gold": Port("its gold answer (optional)")}
    outputs = {
        "solution": Port("a verified solution"),
        "extracted_answer": Port("its final answer"),
        "reference_answer": Port("the gold or majority answer it was verified against"),
        "reference_source": Port('"gold" or "majority"'),
        "tries": Port("samples drawn for the problem", "int64"),
        "verified": Port("samples that verified", "int64"),
        "agreement": Port("verified / tries", "float64"),
        "sample": Port("the kept solution's sample number", "int64"),
    }
    template_needs = ("question",)
    default_template = default_prompt("math_answer_generator", domain="math")

    class Params(LLMParams, VerifyParams):
        k: int = Field(8, ge=1, le=256, description="Most samples per problem.")
        m: int = Field(1, ge=1, le=256, description="Verified solutions wanted per problem.")
        round_size: int | None = Field(None, ge=1, description="Samples per problem per round (default `m`).")
        min_agreement: float = Field(
            0.5, gt=0, le=1, description="Share of samples that must agree on a majority answer (no gold)."
        )
        min_votes: int = Field(2, ge=1, description="Samples that must agree on a majority answer (no gold).")

        @model_validator(mode="after")
        def _sizes(self):
            if self.m > self.k:
                raise ValueError(f"`m` ({self.m}) is more than `k` ({self.k}): at most k samples are drawn")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.gold_bound = "gold" in (inputs or {})
        self.verifier = make_verifier(self.params)

    def required_columns(self) -> list[str]:
        columns = super().required_columns()
        if not self.gold_bound:  # optional: used when the batch has it
            columns.remove(self.input_columns["gold"])
        return columns

    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        column = self.input_columns["gold"]
        if column in batch.table.column_names:
            return super().rows(batch)
        nulls = pa.nulls(batch.num_rows, pa.string())
        return super().rows(Batch(batch.table.append_column(column, nulls), batch.bindings))

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return {"solution": solution_of(text)}

    def draw(self, conversations: list[tuple[tuple[dict[str, str], ...], int, int]]) -> list[list[Answer]]:
        """Samples start..start+count-1 of each conversation (numbered, so each is cached apart)."""
        if self.client is None:
            raise RuntimeError(f"operator `{self.name}` has no LLM backend bound")
        sampling = self.sampling()
        requests = [
            Request(messages, sampling, None, sample_index=start + j)
            for messages, start, count in conversations
            for j in range(count)
        ]
        results = iter([Answer.of(r) for r in self.client.complete(requests)] if requests else [])
        return [[next(results) for _ in range(count)] for _, _, count in conversations]

    def generate(self, batch: Batch):
        p = self.params
        rows = self.rows(batch)
        n = len(rows)
        prompts = [None if row["question"] is None else tuple(self.build_messages(row)) for row in rows]
        texts: list[list[str | None]] = [[] for _ in range(n)]  # per row, per sample: text or None
        first_failure: list[tuple[str, str | None] | None] = [None] * n
        kept: list[list[tuple[int, Any]]] = [[] for _ in range(n)]
        verified = [0] * n
        reference: list[tuple[str, str] | None] = [None] * n
        failed: list[str | None] = [None] * n
        raw: list[str | None] = [None] * n

        def record(i: int, answers: list[Answer]) -> None:
            for answer in answers:
                value, why, text = self.parsed(answer, rows[i])
                texts[i].append(None if why else value["solution"])
                if why and first_failure[i] is None:
                    first_failure[i] = (why, text)

        with_gold = [i for i in range(n) if prompts[i] is not None and rows[i]["gold"] is not None]
        without = [i for i in range(n) if prompts[i] is not None and rows[i]["gold"] is None]
        for i in range(n):
            if prompts[i] is None:
                failed[i] = "null `question` in prompt"
        # Gold: rounds until m verified or k drawn.
        active = list(with_gold)
        size = p.round_size or p.m
        while active:
            counts = {i: min(size, p.k - len(texts[i])) for i in active}
            drawn = self.draw([(prompts[i], len(texts[i]), counts[i]) for i in active])  # type: ignore[misc]
            checks: list[tuple[int, int]] = []
            for i, answers in zip(active, drawn, strict=True):
                start = len(texts[i])
                record(i, answers)
                checks += [(i, j) for j in range(start, len(texts[i])) if texts[i][j] is not None]
            verdicts = self.verifier.verify_many(
                [texts[i][j] for i, j in checks], [str(rows[i]["gold"]) for i, _ in checks]
            )
            for (i, j), verdict in zip(checks, verdicts, strict=True):
                if verdict.passed:
                    verified[i] += 1
                    if len(kept[i]) < p.m:
                        kept[i].append((j, verdict.answer))
            active = [i for i in active if len(kept[i]) < p.m and len(texts[i]) < p.k]
        for i in with_gold:
            reference[i] = (str(rows[i]["gold"]), "gold")
        # No gold: k samples at once, majority answer as the reference.
        if without:
            drawn = self.draw([(prompts[i], 0, p.k) for i in without])  # type: ignore[misc]
            for i, answers in zip(without, drawn, strict=True):
                record(i, answers)
                vote = majority(self.verifier, texts[i])
                if vote.answer is None:
                    continue
                if vote.votes < p.min_votes or vote.agreement < p.min_agreement:
                    first_failure[i] = (
                        f"no majority answer (agreement {vote.agreement:.2f}, {vote.votes} votes)",
                        texts[i][-1],
                    )
                    continue
                verified[i] = vote.votes
                reference[i] = (vote.answer, "majority")
                kept[i] = [(j, vote.answer) for j in vote.members[: p.m]]
        columns: dict[str, list] = {name: [] for name in self.outputs}
        source: list[int] = []
        for i in range(n):
            if failed[i]:
                continue
            if not kept[i]:
                tries = len(texts[i])
                if first_failure[i] and first_failure[i][0].startswith("no majority"):
                    failed[i], raw[i] = first_failure[i]
                elif all(t is None for t in texts[i]) and first_failure[i]:
                    failed[i], raw[i] = first_failure[i]
                else:
                    last = next((t for t in reversed(texts[i]) if t is not None), None)
                    failed[i], raw[i] = f"no verified solution in {tries} samples", last
                continue
            for j, answer in kept[i]:
                columns["solution"].append(texts[i][j])
                columns["extracted_answer"].append(answer)
                columns["reference_answer"].append(reference[i][0])  # type: ignore[index]
                columns["reference_source"].append(reference[i][1])  # type: ignore[index]
                columns["tries"].append(len(texts[i]))
                columns["verified"].append(verified[i])
                columns["agreement"].append(verified[i] / len(texts[i]))
                columns["sample"].append(j)
                source.append(i)
        result = Fanout(columns, pa.array(source, pa.int64()))
        return Partial(result, failed, raw) if any(failed) else result
