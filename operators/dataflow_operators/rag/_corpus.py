"""A document corpus (JSONL, JSON, CSV or Parquet rows of documents) and its BM25 index.

The index is built once per corpus identity and kept on disk: its folder under
`$DATAFLOW_CACHE_DIR/rag-index/` (else `.dataflow/rag-index/` in the working directory, beside the
run directories and the request cache) is named by a hash of the corpus files' bytes, the columns
read and the scoring parameters, so an edited corpus gets a new index and an unchanged one (even
a copy elsewhere) reuses the old. In a process, stages naming the same corpus share one loaded
copy.

Scoring is BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and
Beyond"), Lucene's variant, as implemented by `bm25s` (Lù 2024, "BM25S: Orders of magnitude faster
lexical search via eager sparse scoring"); k1 = 1.5 and b = 0.75 are the usual defaults. Text is
cut into lowercase word tokens (`\\w+`) without English stop words (bm25s's list), and plurals and
third persons are folded by Harman's S-stemmer (Harman 1991, "How effective is suffixing?"), so
"rise" finds "rises"; a document's title, when the corpus has one, is indexed with its text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from dataflow_cli.errors import DataflowError

log = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
INDEX_FORMAT = "1"  # bump when tokenization or the cached files change
_TOKEN = re.compile(r"\w+")
_READ_BATCH = 10_000


class CorpusFields(BaseModel):
    """Params of every operator that reads the corpus."""

    corpus: str | None = Field(
        None,
        min_length=1,
        description="Path or glob of the document corpus (.jsonl, .json, .parquet or .csv), relative to "
        "the spec file's folder.",
    )
    id_column: str = Field("id", min_length=1, description="Corpus column holding each document's unique id.")
    text_column: str = Field("text", min_length=1, description="Corpus column holding each document's text.")
    title_column: str | None = Field(
        "title", min_length=1, description="Corpus column holding each document's title (null for none)."
    )


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def s_stem(word: str) -> str:
    """Harman's S-stemmer: -ies to -y, -es to -e, -s dropped, with its exceptions."""
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def tokenize(text: str, stopwords: frozenset[str]) -> list[str]:
    return [s_stem(t) for t in _TOKEN.findall(text.lower()) if t not in stopwords]


def cache_root() -> Path:
    root = os.environ.get("DATAFLOW_CACHE_DIR")
    return (Path(root) if root else Path(".dataflow")) / "rag-index"


def corpus_paths(fields: CorpusFields, base_dir: Path | None) -> list[Path]:
    from dataflow_cli.io.paths import expand_inputs

    if fields.corpus is None:
        raise DataflowError("no corpus given", hint="set `params.corpus` to the documents file")
    return expand_inputs(fields.corpus, base_dir or Path.cwd())


def corpus_fingerprint(fields: CorpusFields, base_dir: Path | None) -> dict[str, Any]:
    """What identifies the corpus in a stage fingerprint: its files' path, size and mtime."""
    from dataflow_cli.engine.fingerprint import input_identity

    if fields.corpus is None:
        return {}
    try:
        return {"corpus": input_identity(corpus_paths(fields, base_dir))}
    except DataflowError:
        return {"corpus": fields.corpus}  # reported when the stage runs


@dataclass
class Corpus:
    """Documents by position, their ids, and a BM25 index over them."""

    ids: list[str]
    texts: list[str]
    titles: list[str | None]
    key: str
    position: dict[str, int] = field(default_factory=dict)
    retriever: Any = None
    built: bool = False  # this process built the index (False: read from the cache)
    _lock: Any = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.position = {doc_id: i for i, doc_id in enumerate(self.ids)}

    def index(self) -> Any:
        """The BM25 index, read from the cache or built on first use (stages that only look
        documents up never need it)."""
        with self._lock:
            if self.retriever is None:
                self.retriever, self.built = _index(self)
            return self.retriever

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, doc_id: str) -> str | None:
        i = self.position.get(doc_id)
        return None if i is None else self.texts[i]

    def title(self, doc_id: str) -> str | None:
        i = self.position.get(doc_id)
        return None if i is None else self.titles[i]

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The `k` best documents for `query` as (id, score), best first; documents sharing no
        word with the query are never returned, ties go to the earlier document."""
        retriever = self.index()
        tokens = [t for t in tokenize(query, _stopwords()) if t in retriever.vocab_dict]
        if not tokens or k <= 0:
            return []
        scores = np.asarray(retriever.get_scores(tokens), dtype=np.float64)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[scores[top] > 0]
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.ids[i], float(scores[i])) for i in top]


_LOADED: dict[str, Corpus] = {}
_LOCK = threading.Lock()


def load_corpus(fields: CorpusFields, base_dir: Path | None) -> Corpus:
    """The corpus, from this process's memory or read from its files (its index comes on first
    search). Files are hashed only when first read: an edit changes their size or mtime."""
    from dataflow_cli.engine.fingerprint import input_identity

    paths = corpus_paths(fields, base_dir)
    identity = json.dumps([input_identity(paths), fields.id_column, fields.text_column, fields.title_column])
    with _LOCK:
        if identity not in _LOADED:
            _LOADED[identity] = _read(paths, fields, _key(paths, fields))
        return _LOADED[identity]


def _key(paths: list[Path], fields: CorpusFields) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    digest.update(json.dumps([fields.id_column, fields.text_column, fields.title_column]).encode())
    return digest.hexdigest()[:32]


def _read(paths: list[Path], fields: CorpusFields, key: str) -> Corpus:
    import pyarrow as pa

    from dataflow_cli.io.inputs import iter_batches

    where = fields.corpus
    ids: list[str] = []
    texts: list[str] = []
    titles: list[str | None] = []
    for table in iter_batches(paths, _READ_BATCH):
        wanted = [fields.id_column, fields.text_column] + (
            [fields.title_column] if fields.title_column else []
        )
        for column in wanted:
            if column not in table.column_names:
                raise DataflowError(
                    f"corpus `{where}` has no column `{column}`",
                    hint=f"its columns are {', '.join(f'`{c}`' for c in table.column_names)}; "
                    "set `id_column`, `text_column` or `title_column`",
                )
        id_values = table.column(fields.id_column)
        if not (pa.types.is_string(id_values.type) or pa.types.is_large_string(id_values.type)):
            id_values = id_values.cast(pa.string())
        batch_ids = id_values.to_pylist()
        batch_texts = table.column(fields.text_column).to_pylist()
        for doc_id, text in zip(batch_ids, batch_texts, strict=True):
            if doc_id is None:
                raise DataflowError(
                    f"corpus `{where}`: document {len(ids) + 1} has a null `{fields.id_column}`"
                )
            if not isinstance(text, str):
                raise DataflowError(
                    f"corpus `{where}`: document `{doc_id}` has no text in `{fields.text_column}`",
                    hint="every document needs a text value",
                )
            ids.append(doc_id)
            texts.append(text)
        if fields.title_column:
            titles.extend(
                t if isinstance(t, str) else None for t in table.column(fields.title_column).to_pylist()
            )
        else:
            titles.extend([None] * table.num_rows)
    if not ids:
        raise DataflowError(f"corpus `{where}` has no documents")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        twice = next(doc_id for doc_id in ids if doc_id in seen or seen.add(doc_id))
        raise DataflowError(
            f"corpus `{where}`: id `{twice}` is used by two documents", hint="ids must be unique"
        )
    return Corpus(ids, texts, titles, key)


def _index(corpus: Corpus) -> tuple[Any, bool]:
    import bm25s

    settings = json.dumps([corpus.key, INDEX_FORMAT, bm25s.__version__, K1, B]).encode()
    folder = cache_root() / hashlib.sha256(settings).hexdigest()[:32]
    if (folder / "done.json").is_file():
        try:
            retriever = bm25s.BM25.load(folder, mmap=False, show_progress=False)
            if retriever.scores["num_docs"] == len(corpus):
                return retriever, False
            log.warning("BM25 index `%s` does not match its corpus: rebuilding it", folder)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("BM25 index `%s` is unreadable (%s): rebuilding it", folder, exc)
    ids, vocabulary = _token_ids(corpus)
    if not vocabulary:
        raise DataflowError(
            "the corpus has no word to index", hint="its documents hold only stop words or symbols"
        )
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index((ids, vocabulary), show_progress=False)
    _save(retriever, folder, len(corpus))
    return retriever, True


def _token_ids(corpus: Corpus) -> tuple[list[list[int]], dict[str, int]]:
    """Every document as token ids, and the vocabulary; each distinct word is stemmed once."""
    stopwords = _stopwords()
    stems: dict[str, int | None] = {}  # word -> token id (None: a stop word)
    vocabulary: dict[str, int] = {}
    documents = []
    for text, title in zip(corpus.texts, corpus.titles, strict=True):
        ids = []
        for word in _TOKEN.findall(f"{title}\n{text}".lower() if title else text.lower()):
            if word not in stems:
                stem = None if word in stopwords else s_stem(word)
                stems[word] = None if stem is None else vocabulary.setdefault(stem, len(vocabulary))
            if (token := stems[word]) is not None:
                ids.append(token)
        documents.append(ids)
    return documents, vocabulary


def _save(retriever: Any, folder: Path, documents: int) -> None:
    """Write the index to a temp folder and rename it into place: a killed run never leaves a
    half-written index that a later run would trust. An unwritable cache only costs a rebuild."""
    temp = folder.parent / f".tmp-{folder.name}-{os.getpid()}-{threading.get_ident()}"
    try:
        temp.mkdir(parents=True, exist_ok=True)
        retriever.save(temp, show_progress=False)
        (temp / "done.json").write_text(json.dumps({"documents": documents}))
        try:
            temp.rename(folder)
        except OSError:  # another process saved the same index first
            shutil.rmtree(temp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        log.warning("cannot cache the BM25 index in `%s` (%s): it is rebuilt next run", folder, exc)
