"""Rank operators for a free-text query: Okapi BM25 over their names, docstrings, params and
port descriptions.

BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009)
with the usual k1 = 1.2, b = 0.75 and the non-negative idf `ln(1 + (N - df + 0.5) / (df + 0.5))`.
Fields are weighted by repetition (a cheap form of BM25F): a word of the name counts three
times, of the one-line summary twice, of everything else once. A few hundred short documents
need no library: the index is term counts per operator, built with the catalogue and cached with
it (see `index`), so a search imports no operator.

    from dataflow_cli.catalog.search import search
    search("near duplicate documents", k=5)   # [("minhash_dedup_filter", 7.1), ...]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

K1 = 1.2
B = 0.75
WEIGHTS = {"name": 3, "summary": 2, "body": 1}
_PREFIX_FACTOR = 0.5  # a query word that only prefixes (or is prefixed by) an indexed word
_MIN_PREFIX = 4

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by can for from has have if in into is it its of on or that the their "
    "this to was when which with".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric words, stop words out, plurals folded (`duplicates` -> `duplicate`).
    Underscores split words, so `minhash_dedup_filter` is `minhash dedup filter`."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        out.append(word)
    return out


def _fields(op: dict[str, Any]) -> dict[str, str]:
    body = [op.get("description") or "", op.get("domain") or "", op.get("kind") or ""]
    for port in (op.get("inputs") or []) + (op.get("outputs") or []):
        body += [port["name"], port.get("description", ""), port.get("details", "")]
    for param in op.get("params") or []:
        body += [param["name"], param.get("description", ""), param.get("details", "")]
    for notes in (op.get("notes") or {}).values():
        body += notes
    return {"name": op["name"], "summary": op.get("summary") or "", "body": "\n".join(body)}


def build_index(operators: list[dict[str, Any]]) -> dict[str, Any]:
    """Term counts per operator and document frequencies: everything BM25 needs at query time."""
    docs = []
    df: Counter[str] = Counter()
    for op in operators:
        tf: Counter[str] = Counter()
        for field, text in _fields(op).items():
            for term in tokenize(text):
                tf[term] += WEIGHTS[field]
        docs.append({"name": op["name"], "tf": dict(tf), "length": sum(tf.values())})
        df.update(tf.keys())
    lengths = [d["length"] for d in docs]
    return {"docs": docs, "df": dict(df), "avg_length": sum(lengths) / len(lengths) if lengths else 0.0}


def rank(index: dict[str, Any], query: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` best operators of `index` for `query`, best first; only those matching a word."""
    df: dict[str, int] = index["df"]
    n = len(index["docs"])
    avg = index["avg_length"] or 1.0
    # Each query word, with the indexed words it stands for and how much each counts.
    expansions: list[dict[str, float]] = []
    for word in dict.fromkeys(tokenize(query)):
        if word in df:
            expansions.append({word: 1.0})
        elif len(word) >= _MIN_PREFIX:
            near = {
                term: _PREFIX_FACTOR
                for term in df
                if len(term) >= _MIN_PREFIX and (term.startswith(word) or word.startswith(term))
            }
            if near:
                expansions.append(near)
    idf = {term: math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5)) for e in expansions for term in e}
    scored = []
    for doc in index["docs"]:
        tf = doc["tf"]
        norm = K1 * (1 - B + B * doc["length"] / avg)
        score = 0.0
        for terms in expansions:
            # A query word counts once, through its best-matching indexed word.
            score += max(
                (
                    factor * idf[t] * tf[t] * (K1 + 1) / (tf[t] + norm)
                    for t, factor in terms.items()
                    if t in tf
                ),
                default=0.0,
            )
        if score > 0:
            scored.append((doc["name"], round(score, 4)))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:k]


def search(query: str, k: int = 10) -> list[tuple[str, float]]:
    """The `k` installed operators that best match `query`, as (name, score), best first."""
    from dataflow_cli.catalog.index import load

    return rank(load()["index"], query, k)
