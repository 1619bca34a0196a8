import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataflow_operators.text.decontam import NgramDecontamFilter, ReferenceGrams
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError, InputError
from tests.conftest import write_jsonl
from tests.unit.operators.text.test_minhash import batch

QUESTION = "Which planet in our solar system has the largest number of known moons orbiting it today?"
ANSWER = "The mitochondria is the powerhouse of the cell and produces most of its chemical energy."
THIRTEEN = "which planet in our solar system has the largest number of known moons"


@pytest.fixture
def reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(
        tmp_path / "bench" / "test.jsonl",
        [
            {"qid": "q-0", "text": QUESTION},
            {"qid": "q-1", "text": ANSWER},
            {"qid": "q-2", "text": "Short item: two plus two"},
            {"qid": "q-3", "text": None},
        ],
    )
    return "bench/test.jsonl"


def decontam(reference, **params):
    return NgramDecontamFilter(NgramDecontamFilter.Params(reference=reference, **params))


def verdict(op, texts):
    v = op.filter(batch([str(i) for i in range(len(texts))], texts))
    return (
        pa.array(v.keep).to_pylist(),
        pa.array(v.reason, pa.string()).to_pylist(),
        pa.array(v.detail, pa.string()).to_pylist(),
    )


def test_rows_sharing_a_13_gram_are_dropped_with_the_reference_item(reference):
    texts = [
        f"Quiz night! {QUESTION.upper()} Answer: Saturn.",  # case and punctuation do not matter
        "Saturn has the most known moons of any planet in the solar system.",
        "Which planet in our solar system has the largest number of known",  # 12 words of it: kept
        "Biology notes -- the mitochondria is the powerhouse of the cell, and produces most of its energy",
        None,
        "",
    ]
    keep, reason, detail = verdict(decontam(reference), texts)
    assert keep == [False, True, True, False, True, True]
    assert reason == ["contaminated", None, None, "contaminated", None, None]
    assert detail[0] == f'reference row 0: "{THIRTEEN}"'
    assert detail[3].startswith('reference row 1: "the mitochondria is the powerhouse of the cell')


def test_details_name_the_reference_id_column(reference):
    keep, _, detail = verdict(decontam(reference, reference_id_column="qid"), [QUESTION])
    assert keep == [False] and detail[0].startswith('reference id q-0: "which planet')


def test_short_reference_items_match_only_equally_short_rows(reference):
    texts = ["short item - two plus two!", "a short item: two plus two and more words here"]
    keep, _, detail = verdict(decontam(reference), texts)
    assert keep == [False, True] and detail[0] == 'reference row 2: "short item - two plus two"'


def test_ngram_size_and_normalization(reference):
    keep, _, _ = verdict(decontam(reference, ngram=3), ["our solar system is big", "solar system our"])
    assert keep == [False, True]
    loud = QUESTION.upper()
    assert verdict(decontam(reference, normalize=False), [loud])[0] == [True]
    assert verdict(decontam(reference, normalize=False), [QUESTION])[0] == [False]


def test_reference_is_read_lazily_once_relative_to_the_current_directory(reference, tmp_path, monkeypatch):
    loads = []
    original = ReferenceGrams.load.__func__

    def counting(cls, params):
        loads.append(params.reference)
        return original(cls, params)

    monkeypatch.setattr(ReferenceGrams, "load", classmethod(counting))
    op = decontam(reference)
    assert loads == []  # construction (validation) does not read it
    threads = [threading.Thread(target=verdict, args=(op, [QUESTION])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdict(op, [QUESTION])[0] == [False]
    assert loads == [reference]


def test_missing_reference_fails_on_first_batch_not_at_construction(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    op = decontam("nope.jsonl")
    with pytest.raises(InputError, match="not found"):
        verdict(op, ["text"])


def test_parquet_reference_and_missing_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pq.write_table(pa.table({"prompt": [QUESTION], "id": [7]}), tmp_path / "ref.parquet")
    keep, _, detail = verdict(
        decontam("ref.parquet", reference_column="prompt", reference_id_column="id"), [QUESTION]
    )
    assert keep == [False] and detail[0].startswith("reference id 7:")
    with pytest.raises(DataflowError, match="has no column `text`"):
        verdict(decontam("ref.parquet"), [QUESTION])


def test_csv_reference_glob(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("text\nnothing to see here at all\n")
    (tmp_path / "b.csv").write_text(f'text\n"{ANSWER}"\n')
    keep, _, detail = verdict(decontam("*.csv"), [ANSWER, "unrelated"])
    assert keep == [False, True] and detail[0].startswith("reference row 1:")


def test_params_are_validated():
    for bad in ({}, {"reference": ""}, {"reference": "x", "ngram": 0}, {"reference": "x", "n": 3}):
        with pytest.raises(ValidationError):
            NgramDecontamFilter.Params(**bad)
    params = NgramDecontamFilter.Params(reference="x.jsonl")
    assert (params.ngram, params.reference_column, params.normalize) == (13, "text", True)


def test_in_a_pipeline(cli, tmp_path, monkeypatch, reference):
    write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"text": QUESTION},
            {"text": "A clean document about gardening and soil."},
            {"text": ANSWER + " Yes."},
        ],
    )
    (tmp_path / "spec.yaml").write_text(
        "version: 1\nname: decontam\ninput: {path: data.jsonl}\noutput: {path: out.jsonl}\n"
        "stages:\n  - name: decontam\n    op: ngram_decontam_filter\n"
        f"    params: {{reference: {reference}, reference_id_column: qid}}\n"
    )
    cli("validate", tmp_path / "spec.yaml")
    stats = cli.json("run", tmp_path / "spec.yaml", "--run-dir", tmp_path / "run", "--quiet")
    assert stats["rows_written"] == 1 and stats["stages"][0]["dropped_by_reason"] == {"contaminated": 2}
