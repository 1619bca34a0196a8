"""chunk_clean_refiner, chunk_qa_generator, multihop_qa_generator: exact prompts and parsing,
then runs against a real LLMEngine over a scripted fake backend."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from dataflow_operators.knowledge._facts import lost_facts, names, numbers
from dataflow_operators.knowledge.chunk_clean import ChunkCleanRefiner
from dataflow_operators.knowledge.qa_generate import (
    MULTIHOP_SCHEMA,
    ChunkQaGenerator,
    MultihopQaGenerator,
    pairs_schema,
)

from dataflow_cli.errors import SpecError
from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import LLMError, Sampling
from dataflow_cli.operator import Fanout, Partial
from tests.support.llm_ops import batch, bound, user

CHUNK = (
    "The Lake Orrin Field Station was founded in 1987 by Dr. Maren Toft. It hosts about 2,300 "
    "visitors a year and keeps a continuous record of measure-\nments [4]."
)
CLEANED = (
    "The Lake Orrin Field Station was founded in 1987 by Dr. Maren Toft. It hosts about 2300 "
    "visitors a year and keeps a continuous record of measurements."
)
CLEAN_PROMPT = (
    "Clean up this passage, which was extracted automatically from a document.\n"
    "- Join words broken by hyphenation and lines broken in the middle of a sentence.\n"
    "- Remove layout debris: page numbers, running headers and footers, stray symbols.\n"
    "- Remove reference markers such as [12].\n"
    "Do not add, remove or change any fact: keep every number, date and name exactly as written.\n"
    "Answer with the cleaned passage only.\n\nPassage:\n{}\n"
)
QA_PROMPT = (
    "Read the passage and write {n} factual question(s) that it answers.\n"
    "- Each answer is short (a number, a date, a name or a few words) and stated in the passage.\n"
    "- Each quote is copied word for word from the passage and contains the answer.\n"
    "- Each question makes sense on its own: name the place, person or thing it is about.\n"
    "- A question never contains its answer.\n\nPassage:\n{text}\n\n"
    'Answer in JSON: {{"pairs": [{{"question": "...", "answer": "...", "quote": "..."}}]}}\n'
)
HOP_PROMPT = (
    "Read two passages from the same document and write one question that needs both of them.\n"
    "The answer is stated in passage B; finding it needs a fact that only passage A gives (for\n"
    "example, passage A names a place or person and passage B states something about it).\n"
    "- The answer is short (a number, a date, a name or a few words).\n"
    "- quote_a is copied word for word from passage A, quote_b word for word from passage B, and\n"
    "  quote_b contains the answer.\n"
    "- bridge is the fact from passage A that links the two.\n"
    "- The question never contains its answer.\n\nPassage A:\n{a}\n\nPassage B:\n{b}\n\n"
    'Answer in JSON: {{"question": "...", "answer": "...", "quote_a": "...", "quote_b": "...", "bridge": "..."}}\n'
)


# --------------------------------------------------------------------------- facts


def test_facts_are_numbers_and_names_not_sentence_openings():
    assert numbers(CHUNK) == ["1987", "2300"]  # "2,300" canonical; the citation [4] is not a fact
    assert names(CHUNK) == ["Lake Orrin Field Station", "Dr. Maren Toft"]
    assert names("Ospreys hunt in April. The Marta Lind sails. In March toads move.") == [
        "April",
        "Marta Lind",
        "March",
    ]
    assert lost_facts(CHUNK, CLEANED) == []
    assert lost_facts("Ferries leave Kes-\nsel Ford at 07:15.", "Ferries leave Kessel Ford at 07:15.") == []
    assert lost_facts(CHUNK, CLEANED.replace("1987", "1978").replace("Maren Toft", "M. Toft")) == [
        "1987",
        "Dr. Maren Toft",
    ]


# --------------------------------------------------------------------------- chunk_clean_refiner


def cleaner(**params) -> ChunkCleanRefiner:
    return ChunkCleanRefiner(
        ChunkCleanRefiner.Params(**params), inputs={"text": "chunk"}, outputs={"note": "note"}
    )


def test_clean_prompt_and_parse():
    op = cleaner(system="Be careful.")
    assert op.build_messages({"text": CHUNK}) == [
        {"role": "system", "content": "Be careful."},
        {"role": "user", "content": CLEAN_PROMPT.format(CHUNK)},
    ]
    assert op.parse("```\n" + CLEANED + "\n```", {}) == {"text": CLEANED}
    with pytest.raises(ParseError) as caught:
        op.parse("  \n", {})
    assert caught.value.reason == "empty rewrite"
    assert op.transform_schema({"chunk": "string"}) == {"chunk": "string", "note": "string"}
    assert op.written_columns() == ["chunk", "note"]


def test_clean_keeps_the_original_when_a_fact_is_lost_and_says_why():
    chunks = [f"{CHUNK} (copy {k})" for k in "abcd"]
    replies = {
        "a": CLEANED,
        "b": CLEANED.replace("1987", "1978"),
        "c": "The station was founded by a scientist.",
        "d": LLMError("bad_request", "context too long", status=400),
    }

    def script(request):
        return replies[request.messages[-1]["content"].rstrip()[-2]]

    op = cleaner(min_length_ratio=0.5)
    with bound(op, script) as backend:
        result = op.process(batch(chunk=chunks))
    assert sorted((r.messages for r in backend.history), key=str) == [
        user(CLEAN_PROMPT.format(c)) for c in chunks
    ]
    assert isinstance(result, Partial)
    table = result.result
    assert table.column("chunk").to_pylist() == [CLEANED, *chunks[1:]]
    assert table.column("note").to_pylist() == [
        None,
        "kept original: lost 1987",
        "kept original: lost 1987, 2300, Lake Orrin Field Station, Dr. Maren Toft",
        None,
    ]
    assert result.failed == [None, None, None, "llm bad_request (HTTP 400)"]


def test_clean_rejects_a_too_short_rewrite_that_keeps_every_fact():
    op = cleaner(min_length_ratio=0.9)
    short = "Lake Orrin Field Station: 1987, Dr. Maren Toft, 2300 visitors."
    assert op.review(CHUNK, short).startswith("kept original: rewrite is ")


# --------------------------------------------------------------------------- chunk_qa_generator


def qa(**params) -> ChunkQaGenerator:
    inputs = params.pop("inputs", {"text": "chunk"})
    return ChunkQaGenerator(ChunkQaGenerator.Params(**params), inputs=inputs)


PAIRS = {
    "pairs": [
        {
            "question": "When was the Lake Orrin Field Station founded?",
            "answer": "1987",
            "quote": "founded in 1987",
        },
        {"question": "Who founded it?", "answer": 42, "quote": None},
        "not an object",
    ]
}


def test_qa_prompt_schema_and_columns():
    op = qa(questions=3)
    assert op.build_messages({"text": CHUNK}) == [
        {"role": "user", "content": QA_PROMPT.format(n=3, text=CHUNK)}
    ]
    assert op.json_schema() == pairs_schema(3)
    assert op.required_columns() == ["chunk"]
    assert op.active_outputs() == ["question", "answer", "quote", "hops"]
    both = qa(multihop=True)
    assert both.input_columns["second"] == "next_chunk"
    assert both.required_columns() == ["chunk", "next_chunk"]
    assert both.active_outputs() == ["question", "answer", "quote", "second_quote", "bridge", "hops"]
    with pytest.raises(ValueError, match="nothing to ask"):
        ChunkQaGenerator.Params(questions=0)
    with pytest.raises(SpecError, match="second"):
        qa(multihop=True, multihop_template="{{ text }} only").required_columns()


def test_qa_parse_keeps_every_pair_visible_for_the_support_check():
    op = qa(questions=3)
    assert op.parse(json.dumps(PAIRS), {}) == [
        {
            "question": "When was the Lake Orrin Field Station founded?",
            "answer": "1987",
            "quote": "founded in 1987",
            "second_quote": None,
            "bridge": None,
            "hops": 1,
        },
        {
            "question": "Who founded it?",
            "answer": "42",
            "quote": "",
            "second_quote": None,
            "bridge": None,
            "hops": 1,
        },
        {"question": "", "answer": "", "quote": "", "second_quote": None, "bridge": None, "hops": 1},
    ]
    assert len(qa(questions=1).parse(json.dumps(PAIRS), {})) == 1  # never more than asked for
    for bad, reason in (("no json", "answer is not JSON"), ('{"pairs": []}', "`pairs` is missing")):
        with pytest.raises(ParseError, match=reason):
            op.parse(bad, {})


def test_one_and_two_hop_questions_fan_out_per_chunk():
    hop = {
        "question": "In which year was the station founded by the limnologist?",
        "answer": "1987",
        "quote_a": "limnologist Dr. Maren Toft",
        "quote_b": "founded in 1987",
        "bridge": "Dr. Maren Toft",
    }
    one = {
        "pairs": [
            {"question": "Q1?", "answer": "A1", "quote": "q one"},
            {"question": "Q2?", "answer": "A2", "quote": "q two"},
        ]
    }

    def script(request):
        if request.json_schema == MULTIHOP_SCHEMA:
            return json.dumps(hop)
        if "Passage:\nbroken" in request.messages[-1]["content"]:
            return "not json"
        return json.dumps(one)

    op = qa(questions=2, multihop=True, max_tokens=200, inputs={"text": "chunk", "second": "next_chunk"})
    with bound(op, script) as backend:
        result = op.process(batch(chunk=["alpha", "beta", "broken"], next_chunk=["beta", None, None]))
    assert isinstance(result, Partial)
    fanout = result.result
    assert isinstance(fanout, Fanout)
    assert fanout.source_index.to_pylist() == [0, 0, 0, 1, 1]
    assert fanout.columns["hops"].to_pylist() == [1, 1, 2, 1, 1]
    assert fanout.columns["quote"].to_pylist() == [
        "q one",
        "q two",
        "limnologist Dr. Maren Toft",
        "q one",
        "q two",
    ]
    assert fanout.columns["second_quote"].to_pylist() == [None, None, "founded in 1987", None, None]
    assert fanout.columns["bridge"].to_pylist()[2] == "Dr. Maren Toft"
    # The engine validates the answer against the JSON schema before parse sees it.
    assert result.failed == [None, None, "llm invalid_output"] and result.raw[2] == "not json"
    # One one-hop request per chunk; a two-hop request only where `next_chunk` is set.
    prompts = [(r.json_schema == MULTIHOP_SCHEMA, r.messages[-1]["content"]) for r in backend.history]
    assert set(prompts) == {  # (an answer that breaks the schema is retried)
        (False, QA_PROMPT.format(n=2, text="alpha")),
        (False, QA_PROMPT.format(n=2, text="beta")),
        (False, QA_PROMPT.format(n=2, text="broken")),
        (True, HOP_PROMPT.format(a="alpha", b="beta")),
    }
    assert all(r.sampling == Sampling(max_tokens=200) for r in backend.history)


def test_multihop_generator_asks_only_the_two_hop_question():
    op = MultihopQaGenerator(MultihopQaGenerator.Params())
    assert op.required_columns() == ["text", "next_chunk"]
    assert op.multihop_messages({"text": "A", "second": "B"}) == [
        {"role": "user", "content": HOP_PROMPT.format(a="A", b="B")}
    ]
    hop = {"question": "Q?", "answer": "A", "quote_a": "qa", "quote_b": "qb", "bridge": "b"}
    with bound(op, lambda request: json.dumps(hop)) as backend:
        result = op.process(batch(text=["A", "C"], next_chunk=["B", None]))
    assert len(backend.history) == 1
    # The last chunk has no partner: it generates no rows (the engine rejects it as such).
    assert isinstance(result, Fanout) and result.source_index.to_pylist() == [0]
    assert result.columns["hops"].to_pylist() == [2]
    with bound(op, lambda request: '{"bridge": "only"}'):
        failed = op.process(batch(text=["A"], next_chunk=["B"]))
    assert failed.failed == ["two-hop: llm invalid_output"] and failed.raw == ['{"bridge": "only"}']


def test_generators_run_through_the_cli_with_a_fake_backend(tmp_path, cli):
    data = tmp_path / "chunks.jsonl"
    rows = [{"chunk": "one", "next_chunk": "two"}, {"chunk": "two", "next_chunk": None}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: t\ninput: {path: chunks.jsonl}\noutput: {path: out/qa.jsonl}\n"
        "backends: {default: {provider: fake}}\n"
        "stages:\n"
        "  - {name: clean, op: chunk_clean_refiner, inputs: {text: chunk}, outputs: {note: clean_note}}\n"
        "  - {name: qa, op: chunk_qa_generator, inputs: {text: chunk, second: next_chunk},"
        " params: {questions: 1, multihop: true}}\n",
        encoding="utf-8",
    )
    stats = cli.json("run", spec)
    assert (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )
    out = [json.loads(line) for line in (tmp_path / "out" / "qa.jsonl").read_text().splitlines()]
    assert sorted(r["hops"] for r in out) == [1, 1, 2]
    assert {"clean_note", "question", "answer", "quote", "second_quote", "bridge"} <= set(out[0])
    pa.table({"x": [1]})  # pyarrow stays importable alongside the CLI run
