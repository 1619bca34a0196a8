"""The corpus and its BM25 index: ranking, the on-disk cache keyed by content, clear errors."""

from __future__ import annotations

import json
import os

import pytest
from dataflow_operators.rag import _corpus
from dataflow_operators.rag._corpus import CorpusFields, corpus_fingerprint, load_corpus

from dataflow_cli.errors import DataflowError

pytest.importorskip("bm25s")

DOCS = [
    {"id": "a", "title": "Hollowmere", "text": "Hollowmere is a town on the river Tarrow, founded in 1142."},
    {"id": "b", "title": "Tarrow", "text": "The Tarrow rises on Mount Feln and flows 96 km to the sea."},
    {"id": "c", "title": "Wrenfield", "text": "Wrenfield is a market town on the river Osk."},
    {"id": "d", "title": "Osk", "text": "The Osk rises in Lake Imber."},
]


def write(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture
def corpus_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATAFLOW_CACHE_DIR", raising=False)
    _corpus._LOADED.clear()
    yield write(tmp_path / "corpus.jsonl", DOCS)
    _corpus._LOADED.clear()


def test_search_ranks_by_bm25_and_skips_unrelated_documents(corpus_file):
    corpus = load_corpus(CorpusFields(corpus="corpus.jsonl"), None)
    hits = corpus.search("Where does the Tarrow rise?", 10)
    # b has both words ("rises" is stemmed to "rise"); a ("tarrow") and d ("rises") one each,
    # equally rare, and d is the shorter document; c shares no word and is left out
    assert [doc_id for doc_id, _ in hits] == ["b", "d", "a"]
    assert hits[0][1] > hits[1][1] > 0
    assert corpus.search("Where does the Tarrow rise?", 1) == hits[:1]
    assert corpus.search("zebra quartz", 3) == [] and corpus.search("the of", 3) == []
    assert (
        corpus.text("c").startswith("Wrenfield") and corpus.title("d") == "Osk" and corpus.text("x") is None
    )


def test_titles_are_indexed_with_the_text(corpus_file):
    corpus = load_corpus(CorpusFields(corpus="corpus.jsonl"), None)
    assert corpus.search("Wrenfield", 5)[0][0] == "c"
    no_titles = load_corpus(CorpusFields(corpus="corpus.jsonl", title_column=None), None)
    assert no_titles.title("c") is None
    assert [d for d, _ in no_titles.search("Osk", 5)] == ["d", "c"]  # title "Osk" of d not indexed


def test_the_index_is_built_once_per_corpus_content_and_cached_on_disk(corpus_file, tmp_path):
    fields = CorpusFields(corpus="corpus.jsonl")
    first = load_corpus(fields, None)
    first.index()
    assert first.built
    folders = sorted((tmp_path / ".dataflow" / "rag-index").iterdir())
    assert len(folders) == 1 and (folders[0] / "done.json").is_file()
    assert load_corpus(fields, None) is first  # the same process shares the loaded copy

    _corpus._LOADED.clear()  # a new run: read from the cache, same results
    again = load_corpus(fields, None)
    assert again.search("Tarrow rise", 4) == first.search("Tarrow rise", 4) and not (
        again.index() and again.built
    )

    (tmp_path / "copy").mkdir()  # the same content elsewhere reuses it too
    write(tmp_path / "copy" / "c.jsonl", DOCS)
    _corpus._LOADED.clear()
    copy = load_corpus(CorpusFields(corpus="copy/c.jsonl"), None)
    copy.index()
    assert not copy.built

    write(corpus_file, [*DOCS, {"id": "e", "title": "Ostby", "text": "Ostby lies at the mouth of the Osk."}])
    _corpus._LOADED.clear()
    edited = load_corpus(fields, None)
    assert edited.search("mouth of the Osk", 1)[0][0] == "e" and edited.built
    assert len(list((tmp_path / ".dataflow" / "rag-index").iterdir())) == 2


def test_a_broken_cached_index_is_rebuilt(corpus_file, tmp_path):
    fields = CorpusFields(corpus="corpus.jsonl")
    load_corpus(fields, None).index()
    folder = next((tmp_path / ".dataflow" / "rag-index").iterdir())
    for name in os.listdir(folder):
        if name.endswith(".npy"):
            (folder / name).write_bytes(b"garbage")
    _corpus._LOADED.clear()
    corpus = load_corpus(fields, None)
    assert corpus.search("Tarrow rise", 1)[0][0] == "b" and corpus.built


def test_cache_dir_from_the_environment(corpus_file, tmp_path, monkeypatch):
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    load_corpus(CorpusFields(corpus="corpus.jsonl"), None).index()
    assert len(list((tmp_path / "cache" / "rag-index").iterdir())) == 1


def test_paths_are_relative_to_the_spec_folder_and_the_fingerprint_follows_the_file(corpus_file, tmp_path):
    fields = CorpusFields(corpus="corpus.jsonl")
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    with pytest.raises(DataflowError, match="`corpus.jsonl` not found"):
        load_corpus(fields, elsewhere)
    before = corpus_fingerprint(fields, tmp_path)
    write(corpus_file, DOCS[:2])
    os.utime(corpus_file, ns=(1, 1))
    assert corpus_fingerprint(fields, tmp_path) != before
    assert corpus_fingerprint(CorpusFields(), tmp_path) == {}


@pytest.mark.parametrize(
    "docs, message",
    [
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], "id `a` is used by two documents"),
        ([{"id": "a", "text": None}], "document `a` has no text in `text`"),
        ([{"id": None, "text": "x"}], "document 1 has a null `id`"),
        ([{"doc": "a", "text": "x"}], "has no column `id`"),
    ],
)
def test_bad_corpora_are_clear_errors(corpus_file, docs, message):
    write(corpus_file, docs)
    with pytest.raises(DataflowError, match=message):
        load_corpus(CorpusFields(corpus="corpus.jsonl", title_column=None), None)


def test_integer_ids_are_read_as_text(corpus_file):
    write(corpus_file, [{"id": 7, "text": "Ostby lies on the Osk."}, {"id": 8, "text": "Tarrow."}])
    corpus = load_corpus(CorpusFields(corpus="corpus.jsonl", title_column=None), None)
    assert corpus.search("Osk", 2) == [("7", pytest.approx(corpus.search("Osk", 2)[0][1]))]
