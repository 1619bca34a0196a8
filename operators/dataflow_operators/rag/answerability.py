"""Answerability checks of a question against its documents: with them, without them, from one
of them, from what BM25 retrieves for it."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.llm.operator import LLMOperator, LLMParams, Messages, json_object
from dataflow_cli.operator import Batch, Filter, Partial, Port, Verdict
from dataflow_operators._lib.arrow import shorten
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators._lib.qa_text import exact_match, gold_list, token_f1
from dataflow_operators.rag._corpus import Corpus, CorpusFields, corpus_fingerprint, load_corpus
from dataflow_operators.rag._json import TEXT, object_schema, text_field

Check = Literal["with_documents", "closed_book", "single_document", "retrieval"]
CHECKS = ("with_documents", "closed_book", "single_document", "retrieval")
# The prompt each check sends; single_document and retrieval ask with other documents.
PROMPTS = {
    "with_documents": "rag_answer_with_documents",
    "closed_book": "rag_answer_closed_book",
    "single_document": "rag_answer_with_documents",
    "retrieval": "rag_answer_with_documents",
}
REJECT = {
    "with_documents": "not answered correctly with its documents",
    "closed_book": "answered correctly closed-book",
    "single_document": "answerable from a single document",
    "retrieval": "answerable from BM25 hits missing a hop",
}
VERDICT = pa.struct(
    [
        ("check", pa.string()),
        ("passed", pa.bool_()),
        ("reason", pa.string()),
        ("answer", pa.string()),
        ("f1", pa.float64()),
    ]
)
VERDICTS = pa.list_(VERDICT)


class RagAnswerabilityFilter(LLMOperator, Filter):
    """Keep questions that need their documents: answered with them, not without them, not from less.

    Each check asks the model to answer the question in strict JSON (`{"reason": "...",
    "answer": "..."}`) and scores the answer against the gold answer(s) with SQuAD's normalized
    exact match and token F1 (see `rag_answer_score_evaluator`): an answer is correct when it
    matches exactly or its F1 reaches `min_f1`. Checks run in the order of `checks`; a row stops
    at the first it fails, with that check's reason and, in the detail, what the model answered:

    - `with_documents`: answered correctly given all of its documents, else "not answered
      correctly with its documents";
    - `closed_book`: *not* answered correctly without documents, else "answered correctly
      closed-book";
    - `single_document` (multi-hop): not answered correctly from any one of its documents alone,
      else "answerable from a single document" (the detail names the document); rows with one
      document pass;
    - `retrieval` (multi-hop): the top `top_k` BM25 hits of the question alone, over `corpus`;
      when they miss one of the row's documents, the question must not be answered correctly
      from the hits, else "answerable from BM25 hits missing a hop"; hits holding every document
      pass without a request.

    Every row gets the verdict of each check that ran (check, passed, reason, answer, F1), and
    the answer given with all documents. A failed request or an answer that is not such a JSON
    object rejects the row with the check's name, the reason and the raw answer. The judge is
    the stage's backend, so it may differ from the backend that wrote the questions. Prompts:
    `rag_answer_with_documents` (variables `question` and `documents`, a list of texts) and
    `rag_answer_closed_book` (`question`); replace them with `check_templates`.

    Inputs:
        question: the question to check.
        answer: its gold answer, or a list of acceptable gold answers.
        documents: its document text, or the list of its documents' texts (one per hop).
        doc_ids: its document id, or the list of its documents' ids (for the `retrieval` check).
    Outputs:
        answerability: per check that ran, {check, passed, reason, answer, f1}.
        attempt: the answer given with all of the row's documents (null without `with_documents`).
    Params:
        checks: checks to run, in order (default `with_documents`, `closed_book`).
        min_f1: token F1 from which an answer counts as correct (default 0.8).
        top_k: BM25 hits the `retrieval` check retrieves (default 5).
        check_templates: prompt templates replacing `with_documents` (also used by
            `single_document` and `retrieval`) or `closed_book`.
        corpus, id_column, text_column, title_column: the corpus the `retrieval` check searches.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (`template` is not used).
    """

    name = "rag_answerability_filter"
    inputs = {
        "question": Port("the question to check"),
        "answer": Port("gold answer or list of gold answers"),
        "documents": Port("the document text or list of document texts"),
        "doc_ids": Port("the document id or list of document ids"),
    }
    outputs = {
        "answerability": Port("per check that ran: {check, passed, reason, answer, f1}", str(VERDICTS)),
        "attempt": Port("the answer given with all documents", "string"),
    }
    default_template = "\n".join(
        f"{{# check `{check}` #}}\n{default_prompt(PROMPTS[check], domain='rag')}"
        for check in ("with_documents", "closed_book")
    )

    class Params(LLMParams, CorpusFields):
        checks: list[Check] = Field(
            default_factory=lambda: ["with_documents", "closed_book"],
            min_length=1,
            description=f"Checks to run, in order: {', '.join(CHECKS)}.",
        )
        min_f1: float = Field(0.8, gt=0, le=1, description="Token F1 from which an answer counts as correct.")
        top_k: int = Field(5, ge=1, le=100, description="BM25 hits the `retrieval` check retrieves.")
        check_templates: dict[Literal["with_documents", "closed_book"], str] = Field(
            default_factory=dict,
            description="Prompt templates replacing `with_documents` (also used by `single_document` and "
            "`retrieval`) or `closed_book`.",
        )

        @field_validator("checks")
        @classmethod
        def _unique(cls, checks: list[str]) -> list[str]:
            repeated = sorted({c for c in checks if checks.count(c) > 1})
            if repeated:
                raise ValueError(f"check `{repeated[0]}` is listed twice")
            return checks

        @model_validator(mode="after")
        def _consistent(self):
            if self.template is not None:
                raise ValueError("each check has its own prompt: set `check_templates` instead of `template`")
            if "retrieval" in self.checks and self.corpus is None:
                raise ValueError("the `retrieval` check searches a corpus: set `corpus`")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        if "retrieval" in self.params.checks:
            import importlib.util

            if importlib.util.find_spec("bm25s") is None:
                raise DataflowError(
                    f"operator `{self.name}` needs `bm25s` for the `retrieval` check",
                    hint="pip install bm25s",
                )
        self._corpus: Corpus | None = None  # read on the first `retrieval` check
        self.templates = {
            prompt: self.params.check_templates.get(check) or default_prompt(PROMPTS[check], domain="rag")
            for check, prompt in (
                ("with_documents", PROMPTS["with_documents"]),
                ("closed_book", PROMPTS["closed_book"]),
            )
        }

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self.params, self.base_dir) if "retrieval" in self.params.checks else {}

    # Prompts -----------------------------------------------------------------------------
    def _used_prompts(self) -> list[str]:
        return sorted({PROMPTS[check] for check in self.params.checks})

    def template_text(self) -> str:
        return "\n".join(f"{{# prompt `{name}` #}}\n{self.templates[name]}" for name in self._used_prompts())

    def template_columns(self) -> list[str]:
        from dataflow_cli.prompts import template_variables

        if self.prompt:
            raise SpecError(
                f"`{self.name}` has one prompt per check: set `params.check_templates` instead of `prompt:`"
            )
        columns: set[str] = set()
        for name in self._used_prompts():
            variables = template_variables(self.templates[name])
            needed = ["question", "documents"] if name == PROMPTS["with_documents"] else ["question"]
            for variable in needed:
                if variable not in variables:
                    raise SpecError(f"the prompt `{name}` must use `{{{{ {variable} }}}}`")
            columns |= variables
        return sorted(columns)

    def check_messages(self, check: str, row: dict[str, Any], documents: list[str] | None) -> Messages:
        """The request of one check: optional system prompt, then the check's prompt over the row
        with `documents` set to the texts this request may use."""
        from dataflow_cli.prompts import compile_template

        messages = [{"role": "system", "content": self.params.system}] if self.params.system else []
        variables = {**row, "documents": documents or []}
        messages.append(
            {"role": "user", "content": compile_template(self.templates[PROMPTS[check]]).render(**variables)}
        )
        return messages

    def build_messages(self, row: dict[str, Any]) -> Messages:
        return self.check_messages(self.params.checks[0], row, _as_list(row.get("documents")))

    def json_schema(self) -> dict[str, Any]:
        return object_schema(reason=TEXT, answer=TEXT)

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, str]:
        value = json_object(text)
        return {"reason": text_field(value, "reason"), "answer": text_field(value, "answer")}

    # Running -----------------------------------------------------------------------------
    def filter(self, batch: Batch) -> Any:
        rows = self.rows(batch)
        n = len(rows)
        keep = [True] * n
        reason: list[str | None] = [None] * n
        detail: list[str | None] = [None] * n
        failed: list[str | None] = [None] * n
        raw: list[str | None] = [None] * n
        verdicts: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        attempt: list[str | None] = [None] * n
        golds: list[list[str]] = [[] for _ in range(n)]
        active = []
        for i, row in enumerate(rows):
            why = _unusable(row)
            if why is None:
                golds[i] = gold_list(row["answer"])
                why = None if golds[i] else "no gold answer"
            if why is None:
                active.append(i)
            else:
                failed[i] = why
        for check in self.params.checks:
            if not active:
                break
            jobs: list[tuple[int, list[str] | None, Any]] = []
            for i in active:
                planned = self._plan(check, rows[i])
                if isinstance(planned, str):  # passes without asking
                    verdicts[i].append(_verdict(check, True, planned))
                else:
                    jobs.extend((i, documents, tag) for documents, tag in planned)
            answers = self.ask_messages(
                [self.check_messages(check, rows[i], documents) for i, documents, _ in jobs],
                1,
                self.json_schema(),
            )
            outcomes: dict[int, list[tuple[Any, dict | None, str | None, str | None]]] = {}
            for (i, _, tag), (answer,) in zip(jobs, answers, strict=True):
                value, why, text = self.parsed(answer, rows[i])
                outcomes.setdefault(i, []).append((tag, value, why, text))
            still = []
            for i in active:
                if i not in outcomes:
                    still.append(i)
                    continue
                bad = next((o for o in outcomes[i] if o[2] is not None), None)
                if bad is not None:
                    failed[i], raw[i] = f"{check}: {bad[2]}", bad[3]
                    continue
                scored = [
                    (tag, value["answer"], self._correct(value["answer"], golds[i]))
                    for tag, value, _, _ in outcomes[i]
                ]
                passed, said, f1, why_kept, why_dropped = self._judge(check, rows[i], scored)
                verdicts[i].append(_verdict(check, passed, why_kept if passed else why_dropped, said, f1))
                if check == "with_documents":
                    attempt[i] = said
                if passed:
                    still.append(i)
                else:
                    keep[i], reason[i], detail[i] = False, REJECT[check], why_dropped
            active = still
        verdict = Verdict(
            keep,
            pa.array(reason, pa.string()),
            pa.array(detail, pa.string()),
            columns={
                "answerability": pa.array(verdicts, VERDICTS),
                "attempt": pa.array(attempt, pa.string()),
            },
        )
        return Partial(verdict, failed, raw) if any(failed) else verdict

    def _plan(self, check: str, row: dict[str, Any]) -> str | list[tuple[list[str] | None, Any]]:
        """The requests of one check for one row as (documents, tag) pairs, or, when the check
        passes without asking, the reason it does."""
        documents = _as_list(row["documents"])
        if check == "with_documents":
            return [(documents, None)]
        if check == "closed_book":
            return [(None, None)]
        ids = _as_list(row["doc_ids"])
        if check == "single_document":
            if len(documents) < 2:
                return "one document: nothing to answer it from alone"
            return [([document], j) for j, document in enumerate(documents)]
        if self._corpus is None:
            self._corpus = load_corpus(self.params, self.base_dir)
        corpus = self._corpus
        hits = [doc_id for doc_id, _ in corpus.search(row["question"], self.params.top_k)]
        missing = [doc_id for doc_id in ids if doc_id not in hits]
        if not hits:
            return f"BM25 finds no document for the question alone (top {self.params.top_k})"
        if not missing:
            return f"BM25 top {self.params.top_k} hold every document: no hop is missing"
        texts = [corpus.text(doc_id) or "" for doc_id in hits]
        return [(texts, (hits, missing))]

    def _correct(self, said: str, golds: list[str]) -> tuple[bool, float]:
        f1 = token_f1(said, golds)
        return exact_match(said, golds) or f1 >= self.params.min_f1, f1

    def _judge(self, check: str, row: dict[str, Any], scored: list) -> tuple[bool, str, float, str, str]:
        """(passed, answer shown, its F1, reason if passed, reason if dropped) from the scored answers."""
        if check == "single_document":
            ids = _as_list(row["doc_ids"])
            right = next(((tag, said, f1) for tag, said, (ok, f1) in scored if ok), None)
            best = right or max(((tag, said, f1) for tag, said, (_, f1) in scored), key=lambda s: s[2])
            tag, said, f1 = best
            name = f"`{ids[tag]}`" if tag < len(ids) else f"{tag + 1}"
            return (
                right is None,
                said,
                f1,
                f"no single document answers it (best: document {tag + 1}, F1 {f1:.2f})",
                f'document {tag + 1} ({name}) alone: answered "{shorten(said)}" (F1 {f1:.2f})',
            )
        tag, said, (ok, f1) = scored[0]
        quoted = f'"{shorten(said)}" (F1 {f1:.2f})'
        if check == "with_documents":
            return ok, said, f1, f"answered {quoted}", f"answered {quoted}"
        if check == "closed_book":
            return not ok, said, f1, f"closed-book answer {quoted} is not correct", f"answered {quoted}"
        hits, missing = tag
        where = f"top {len(hits)} hits ({', '.join(hits)}) miss {', '.join(missing)}"
        return not ok, said, f1, f"{where} and do not answer it: {quoted}", f"{where}: answered {quoted}"


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _unusable(row: dict[str, Any]) -> str | None:
    for name in ("question", "answer", "documents", "doc_ids"):
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"null `{name}` in prompt"
        if not isinstance(value, str) and (not value or any(not isinstance(v, str) for v in value)):
            return f"empty or null item in `{name}`"
    return None


def _verdict(
    check: str, passed: bool, reason: str, answer: str | None = None, f1: float | None = None
) -> dict:
    return {"check": check, "passed": passed, "reason": reason, "answer": answer, "f1": f1}
