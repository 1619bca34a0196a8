"""Pair verified single-document QA rows into multi-hop chains: bridge (depth), comparison and
intersection (width)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from dataflow_cli.operator import Batch, Fanout, Generator, NoParams, Partial, Port
from dataflow_operators._lib.qa_text import answer_tokens, contains_answer, normalize_answer
from dataflow_operators.rag._corpus import CorpusFields, corpus_fingerprint, load_corpus

Composition = Literal["bridge", "comparison", "intersection"]
HOP = pa.struct(
    [
        ("doc_id", pa.string()),
        ("title", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("support", pa.string()),
    ]
)
HOPS = pa.list_(HOP)
STRINGS = pa.list_(pa.string())
_NUMBER = re.compile(r"^\s*(-?\d[\d,]*(?:\.\d+)?)\s*(.*?)\s*$")
_MAX_MENTION = 6  # longest entity mention (in words) looked for in a question
# Answers that name no entity: a bridge through them would join unrelated facts.
_NOT_ENTITIES = frozenset({"yes", "no", "true", "false", "unknown", "none"})


@dataclass
class Fact:
    position: int
    doc_id: str
    title: str
    question: str
    answer: str
    support: str
    number: tuple[float, str] | None  # (value, unit) of a numeric answer


class RagHopPairGenerator(Generator):
    """Compose verified single-document QA rows into two-hop chains across documents.

    A global stage: it reads every row (document id, question, answer, supporting span: a few
    hundred bytes per row), then emits one row per chain whose first hop is the row, up to
    `max_per_row`. Compositions, each between facts of two different documents:

    - `bridge` (depth): hop 1's answer is an entity hop 2 needs: the title of hop 2's document
      (hop 2 is about it) or a mention in hop 2's question (after SQuAD answer normalization).
      The gold answer is hop 2's. Yes/no and numeric answers are not entities.
    - `comparison` (width): both answers are numbers with the same unit (anything after the
      number) and different values, and the questions ask the same thing of different subjects:
      their words, without each document's title, overlap by at least `min_question_overlap`
      (Jaccard). The gold answer is the title of the document with the greater value.
    - `intersection` (width): both answers are the same entity (normalized). The gold answer is
      that entity.

    Chains are listed bridge first, then intersection, then comparison, each by partner row
    order, so the output does not depend on batch boundaries. Every row records its hop chain
    (document id, title, question, answer and span per hop) and its documents' ids and texts,
    read from `corpus` by id. A row that starts no chain is rejected with "no hop partner"; one
    whose document is not in the corpus with "document not in corpus".

    Inputs:
        doc_id: the id of the row's document in the corpus.
        question: the row's verified question.
        answer: its answer.
        support: its supporting span.
    Outputs:
        composition: `bridge`, `comparison` or `intersection`.
        hops: the chain, one {doc_id, title, question, answer, support} per hop.
        hop_doc_ids: the hops' document ids.
        hop_documents: the hops' document texts.
        multihop_answer: the gold answer of the composed question.
    Params:
        compositions: which compositions to make (default all three).
        max_per_row: most chains starting from one row (default 2).
        min_question_overlap: least word overlap (Jaccard) of two questions to compare (default 0.5).
        corpus, id_column, text_column, title_column: the corpus holding the documents.
    """

    name = "rag_hop_pair_generator"
    scope = "global"
    inputs = {
        "doc_id": Port("the id of the row's document in the corpus"),
        "question": Port("the row's verified question"),
        "answer": Port("its answer"),
        "support": Port("its supporting span"),
    }
    outputs = {
        "composition": Port("bridge, comparison or intersection"),
        "hops": Port("the chain: {doc_id, title, question, answer, support} per hop", str(HOPS)),
        "hop_doc_ids": Port("the hops' document ids", str(STRINGS)),
        "hop_documents": Port("the hops' document texts", str(STRINGS)),
        "multihop_answer": Port("the gold answer of the composed question"),
    }

    class Params(NoParams, CorpusFields):
        compositions: list[Composition] = Field(
            default_factory=lambda: ["bridge", "comparison", "intersection"],
            min_length=1,
            description="Compositions to make: bridge, comparison, intersection.",
        )
        max_per_row: int = Field(2, ge=1, le=100, description="Most chains starting from one row.")
        min_question_overlap: float = Field(
            0.5, ge=0, le=1, description="Least word overlap (Jaccard) of two questions to compare."
        )

        @model_validator(mode="after")
        def _corpus_given(self):
            if self.corpus is None:
                raise ValueError("set `corpus`: the documents of the hops are read from it")
            return self

    def fingerprint_extra(self) -> dict[str, Any]:
        return corpus_fingerprint(self.params, self.base_dir)

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Any]:
        corpus = load_corpus(self.params, self.base_dir)
        sizes: list[int] = []
        facts: list[Fact | None] = []
        missing: set[int] = set()
        for batch in batches:
            sizes.append(batch.num_rows)
            columns = [batch.values(name) for name in ("doc_id", "question", "answer", "support")]
            for doc_id, question, answer, support in zip(*columns, strict=True):
                position = len(facts)
                if not all(isinstance(v, str) and v.strip() for v in (doc_id, question, answer, support)):
                    facts.append(None)
                elif corpus.text(doc_id) is None:
                    facts.append(None)
                    missing.add(position)
                else:
                    title = corpus.title(doc_id) or doc_id
                    facts.append(Fact(position, doc_id, title, question, answer, support, _number(answer)))
        chains = self.chains([f for f in facts if f is not None])
        start = 0
        for size in sizes:
            columns: dict[str, list] = {name: [] for name in self.outputs}
            source: list[int] = []
            failed: list[str | None] = []
            for offset in range(size):
                position = start + offset
                made = chains.get(position, [])
                for composition, hops, gold in made:
                    columns["composition"].append(composition)
                    columns["hops"].append([_hop(f) for f in hops])
                    columns["hop_doc_ids"].append([f.doc_id for f in hops])
                    columns["hop_documents"].append([corpus.text(f.doc_id) for f in hops])
                    columns["multihop_answer"].append(gold)
                    source.append(offset)
                if made:
                    failed.append(None)
                elif position in missing:
                    failed.append("document not in corpus")
                elif facts[position] is None:
                    failed.append("null or empty input")
                else:
                    failed.append("no hop partner")
            start += size
            arrays = {
                "composition": pa.array(columns["composition"], pa.string()),
                "hops": pa.array(columns["hops"], HOPS),
                "hop_doc_ids": pa.array(columns["hop_doc_ids"], STRINGS),
                "hop_documents": pa.array(columns["hop_documents"], STRINGS),
                "multihop_answer": pa.array(columns["multihop_answer"], pa.string()),
            }
            fanout = Fanout(arrays, pa.array(source, pa.int64()))
            yield Partial(fanout, failed) if any(failed) else fanout

    def chains(self, facts: list[Fact]) -> dict[int, list[tuple[str, list[Fact], str]]]:
        """Per first-hop position, its chains as (composition, hops, gold answer), in order."""
        wanted = set(self.params.compositions)
        found: dict[int, list[tuple[tuple[int, int], str, list[Fact], str]]] = defaultdict(list)
        if "bridge" in wanted:
            for a, b in _bridges(facts):
                found[a.position].append(((0, b.position), "bridge", [a, b], b.answer))
        if "intersection" in wanted:
            for a, b in _intersections(facts):
                found[a.position].append(((1, b.position), "intersection", [a, b], a.answer))
        if "comparison" in wanted:
            for a, b in _comparisons(facts, self.params.min_question_overlap):
                greater = a if a.number[0] > b.number[0] else b  # type: ignore[index]
                found[a.position].append(((2, b.position), "comparison", [a, b], greater.title))
        return {
            position: [(c, hops, gold) for _, c, hops, gold in sorted(made, key=lambda m: m[0])][
                : self.params.max_per_row
            ]
            for position, made in found.items()
        }


def _hop(fact: Fact) -> dict[str, str]:
    return {
        "doc_id": fact.doc_id,
        "title": fact.title,
        "question": fact.question,
        "answer": fact.answer,
        "support": fact.support,
    }


def _number(answer: str) -> tuple[float, str] | None:
    match = _NUMBER.match(answer)
    if match is None:
        return None
    return float(match.group(1).replace(",", "")), normalize_answer(match.group(2))


def _is_entity(fact: Fact) -> bool:
    normalized = normalize_answer(fact.answer)
    return bool(normalized) and fact.number is None and normalized not in _NOT_ENTITIES


def _mentions(text: str) -> set[str]:
    """Every run of 1 to `_MAX_MENTION` normalized words of the text."""
    words = answer_tokens(text)
    return {" ".join(words[i : i + n]) for n in range(1, _MAX_MENTION + 1) for i in range(len(words) - n + 1)}


def _bridges(facts: list[Fact]) -> Iterator[tuple[Fact, Fact]]:
    """(hop 1, hop 2): hop 1's answer is hop 2's document title or is named in hop 2's question."""
    by_entity: dict[str, set[int]] = defaultdict(set)
    for j, fact in enumerate(facts):
        by_entity[normalize_answer(fact.title)].add(j)
        for mention in _mentions(fact.question):
            by_entity[mention].add(j)
    for a in facts:
        if not _is_entity(a):
            continue
        for j in sorted(by_entity.get(normalize_answer(a.answer), ())):
            b = facts[j]
            if (
                b.doc_id != a.doc_id
                and normalize_answer(b.answer) != normalize_answer(a.answer)
                and not contains_answer(a.question, b.answer)
            ):
                yield a, b


def _intersections(facts: list[Fact]) -> Iterator[tuple[Fact, Fact]]:
    """(first, second) of two facts of different documents with the same entity answer."""
    groups: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        if _is_entity(fact):
            groups[normalize_answer(fact.answer)].append(fact)
    for group in groups.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if a.doc_id != b.doc_id and normalize_answer(a.question) != normalize_answer(b.question):
                    yield a, b


def _comparisons(facts: list[Fact], min_overlap: float) -> Iterator[tuple[Fact, Fact]]:
    """(first, second) of two numeric facts of different documents asking the same of each."""
    by_unit: dict[str, list[tuple[Fact, set[str]]]] = defaultdict(list)
    for fact in facts:
        if fact.number is not None:
            subject = set(answer_tokens(fact.title))
            by_unit[fact.number[1]].append((fact, set(answer_tokens(fact.question)) - subject))
    for group in by_unit.values():
        for i, (a, words_a) in enumerate(group):
            for b, words_b in group[i + 1 :]:
                if a.doc_id == b.doc_id or a.number[0] == b.number[0]:  # type: ignore[index]
                    continue
                union = words_a | words_b
                if union and len(words_a & words_b) / len(union) >= min_overlap:
                    yield a, b
