"""Find the operators and ready pipelines that fit a user's request, offline and without a model.

Operators: Okapi BM25 (the catalogue's k1 and b, see `dataflow_cli.catalog.search`) over each
installed operator's name, kind, domain, docstring, params and port descriptions, read from the
cached catalogue (`dataflow_cli.catalog.index`), so a warm call imports no operator module and
plugins are covered as soon as they are installed. The catalogue's own index is built for people
who type operator words ("near duplicate"); users write requests ("get rid of the same documents
crawled twice", "mask phone numbers", "rate the answers"), so this module indexes the same
metadata with a tokeniser for requests:

- words split on anything not a letter or digit (so snake_case names split), light suffix
  stemming (plurals, -ing, -ed, -ation/-ator, -ization, -icity) applied alike to documents and
  queries, request filler words ("I want", "please", "my dataset") dropped;
- misspelt query words mapped to an indexed word one edit away (deletion neighbourhoods,
  Garbe's SymSpell idea), at a discount;
- an expansion table of domain vocabulary (`EXPANSIONS`): phrases users write, matched on the
  stemmed words of the request, adding the words the operators' docstrings use. Expansions
  count less than the user's own words, and each query word counts once, through its best
  match (as in `catalog.search`), so a long expansion cannot drown the request;
- domain gating (`DOMAIN_CUES`): an operator of a specialised domain (math, code, text2sql,
  rag, knowledge) counts less when the request says nothing of that domain, so generic
  requests find the generic operators.

Ready pipelines (`pipelines/*/pipeline.yaml`, found like `dataflow init` finds them: in the
wheel under `dataflow_cli/_bundled`, else the checkout's folder): BM25 over each spec's name,
description and stage names, fused with how well the pipeline's operators match the request;
`ready_pipeline` decides whether one is a good start at all.

Nothing here imports an operator, pyarrow or pandas on a warm catalogue cache; the optional
`semantic` extra is not used (plain BM25 with the rules above reaches the figures of
`bench/agent_retrieval.py` without a model).

    retrieve_operators("remove near-duplicate web pages", k=3, kinds=["filter"])
    retrieve_operators("judge the solutions", context=request)   # one sub-goal of a request
    retrieve_pipelines("verified python coding exercises with unit tests")
    ready_pipeline("turn our PDF manuals into QA pairs")         # PipelineHit or None
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataflow_cli.catalog import KINDS
from dataflow_cli.catalog.search import K1, B

# Field weights by repetition (BM25F on the cheap): the name says what an operator is, the
# summary what it does, the rest is detail where params of LLM operators (temperature, seed,
# max_tokens ...) add noise.
WEIGHTS = {"name": 3, "summary": 2, "domain": 2, "body": 1}
EXPANSION_WEIGHT = 0.6  # a word the table adds counts less than one the user wrote
TYPO_FACTOR = 0.6
PREFIX_FACTOR = 0.4
_MIN_PREFIX = 5

# Ready-pipeline top hit below this score: no ready pipeline fits (see `ready_pipeline`).
READY_MIN_SCORE = 0.4
TEXT_SHARE = 0.7  # of a pipeline's score: its text match; the rest: the operators it holds
USAGE_TOP = 8
USAGE_POWER = 2.0  # operators weigh by their score squared: the request's best ones count most
GENERIC_RULE_DOMAINS = ("text", "core", "sft")


@dataclass(frozen=True)
class OperatorHit:
    name: str
    kind: str
    domain: str
    score: float
    summary: str  # the docstring's first line


@dataclass(frozen=True)
class PipelineHit:
    name: str
    path: Path
    score: float
    description: str
    operators: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Tokeniser

_WORD = re.compile(r"[a-z0-9]+")
# Articles and function words, plus the filler of requests ("I'd like you to take my dataset
# and ..."), which carries no meaning for retrieval.
STOP = frozenset(
    """a an and are as at be by can for from has have if in into is it its of on or that the
    their this to was when which with i me my we our us you your it's they them those these then
    than there here so such some any all each every also just only very really please want
    wanted need needs would like could should will shall do does did make made get got give
    take use using used help let lets thing things something stuff way sure ok okay hi hello
    thanks thank d ll m re s t ve what how who where why one two""".split()
)
# Numbers of the request ("two hop" is expanded before this list drops "two").
_KEEP_SHORT = frozenset({"qa", "ai", "id", "ip", "db", "cs", "io"})


def stem(word: str) -> str:
    """A light suffix stripper, the same for documents and queries: conflate the forms a
    request and a docstring use for one idea (`duplicates`/`duplicate`, `filtering`/`filter`,
    `generation`/`generator`/`generate`, `normalization`/`normalize`)."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, repl in (
        ("izations", "iz"),
        ("ization", "iz"),
        ("ations", "at"),
        ("ation", "at"),
        ("ators", "at"),
        ("ator", "at"),
        ("icity", "ic"),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "shes", "ches", "xes")) and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        word = _undouble(word[:-2])
    elif word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _undouble(word: str) -> str:
    # running -> run, but keep "ll"/"ss" words whole (spell, pass).
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        return word[:-1]
    return word


_MIXED = re.compile(r"[a-z]{3,}")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric words; underscores, hyphens and camelCase split. A word mixing
    letters and digits also gives its letter runs (`jinja2` -> `jinja2 jinja`, `text2sql` ->
    `text2sql text sql`), so "jinja" finds "Jinja2" and "text to SQL" finds `text2sql`."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    out = []
    for word in _WORD.findall(text.lower()):
        out.append(word)
        if not word.isalpha() and not word.isdigit():
            out.extend(_MIXED.findall(word))
    return out


def tokenize(text: str) -> list[str]:
    """Stemmed words without stop words: what documents are indexed as."""
    out = []
    for word in words(text):
        if word in STOP or word.isdigit() or (len(word) < 3 and word not in _KEEP_SHORT and word.isalpha()):
            continue
        out.append(stem(word))
    return out


# --------------------------------------------------------------------------------------------
# Domain vocabulary: what users say -> what operator docstrings say.
# Keys are phrases matched on the request's stemmed words (so "near-duplicates" matches
# "near duplicate"); values are added to the query at EXPANSION_WEIGHT.

EXPANSIONS: dict[str, str] = {
    # dedup
    "duplicate": "dedup duplicate exact",
    "dupe": "dedup duplicate",
    "dedupe": "dedup duplicate",
    "deduplicate": "dedup duplicate",
    "twice": "dedup duplicate",
    "same text": "dedup duplicate exact",
    "repeated row": "dedup duplicate",
    "repeated example": "dedup duplicate",
    "repeated document": "dedup duplicate",
    "repeat": "repetition repeat",
    "identical": "dedup exact duplicate",
    "copy": "duplicate copy",
    "near duplicate": "near-duplicate minhash simhash",
    "almost same": "near-duplicate minhash simhash",
    "almost identical": "near-duplicate minhash simhash",
    "nearly identical": "near-duplicate minhash simhash",
    "fuzzy": "near-duplicate minhash simhash",
    "similar": "near-duplicate minhash simhash",
    "paraphrase": "semantic embedding",
    "same meaning": "semantic embedding near-duplicate",
    "semantically": "semantic embedding",
    "boilerplate": "boilerplate banner cookie",
    # pii
    "personal": "pii personal",
    "private": "pii personal",
    "privacy": "pii personal mask",
    "sensitive": "pii personal",
    "email": "pii email",
    "phone": "pii phone",
    "address": "pii ip",
    "credit card": "pii credit card",
    "gdpr": "pii personal mask",
    "anonymize": "pii mask",
    "anonymise": "pii mask",
    "redact": "pii mask",
    "scrub": "pii mask remove",
    "hide": "mask",
    # quality / safety
    "toxic": "flagged block-list bad word",
    "offensive": "flagged block-list bad word",
    "profanity": "flagged block-list bad word",
    "swear": "flagged block-list bad word",
    "nsfw": "flagged block-list bad word",
    "obscene": "flagged block-list bad word",
    "hate": "flagged block-list bad word",
    "bad word": "flagged block-list",
    "low quality": "quality gopher c4 fineweb rule",
    "garbage": "quality gopher c4 fineweb rule",
    "junk": "quality gopher c4 fineweb rule",
    "spam": "quality gopher c4 fineweb rule boilerplate",
    "web": "document c4 fineweb gopher html",
    "crawl": "document c4 fineweb gopher html",
    "scrape": "document c4 fineweb gopher html",
    "common crawl": "c4 fineweb gopher",
    "pretrain": "document c4 fineweb gopher",
    "pre train": "document c4 fineweb gopher",
    "pretraining": "document c4 fineweb gopher",
    "between": "range min max numeric value",
    "above": "range min numeric value",
    "below": "range max numeric value",
    "under": "range max",
    "higher": "range min numeric value",
    "lower": "range max numeric value",
    "at least": "range min",
    "at most": "range max",
    "more than": "range min",
    "less than": "range max",
    "fewer than": "range max",
    "or more": "range min",
    "or less": "range max",
    "threshold": "range min max",
    "cutoff": "range min max",
    "minimum": "range min",
    "maximum": "range max",
    "empty": "length range null empty",
    "shorter": "length range max",
    "longer": "length range min",
    "too short": "length range",
    "too long": "length range truncate",
    "short": "length",
    "long": "length",
    "length": "length range",
    "word count": "length word",
    "gibberish": "char ratio special symbol",
    "symbol": "special char ratio",
    "weird character": "special char ratio unicode",
    "repetitive": "repetition repeat",
    "loop": "repetition repeat",
    "refuse": "refusal",
    "refusal": "refusal",
    "as an ai": "refusal boilerplate",
    "disclaimer": "refusal boilerplate",
    "sorry": "refusal",
    "contamination": "decontamination benchmark n-gram",
    "decontaminate": "decontamination benchmark n-gram",
    "benchmark": "decontamination benchmark",
    "test question": "decontamination benchmark",
    "mmlu": "decontamination benchmark",
    "humaneval": "decontamination benchmark",
    "hotpotqa": "decontamination benchmark",
    "mean same": "semantic embedding near-duplicate",
    "word different": "semantic embedding near-duplicate",
    "phrased different": "semantic embedding near-duplicate",
    "test set": "decontamination benchmark",
    "eval set": "decontamination benchmark",
    "overlap": "decontamination n-gram",
    "leak": "decontamination benchmark",
    # language
    "language": "language langid",
    "english": "language allowed en",
    "french": "language allowed",
    "german": "language allowed",
    "spanish": "language allowed",
    "chinese": "language allowed",
    "non english": "language allowed",
    "foreign": "language allowed",
    "multilingual": "language",
    # cleaning
    "clean": "normalize clean",
    "tidy": "normalize clean",
    "whitespace": "normalize whitespace",
    "lowercase": "normalize lowercase",
    "unicode": "unicode normalize",
    "encoding": "mojibake unicode repair",
    "mojibake": "mojibake unicode repair",
    "garbled": "mojibake unicode repair",
    "broken character": "mojibake unicode repair",
    "html": "html markup",
    "html tag": "html markup",
    "markup": "html markup",
    "link": "url",
    "url": "url",
    "emoji": "emoji",
    "emoticon": "emoji",
    "quote": "punctuation",
    "dash": "punctuation",
    "punctuation": "punctuation",
    "cut": "truncate",
    "shorten": "truncate",
    "trim": "truncate normalize",
    "column": "column",
    "drop column": "select column",
    "keep column": "select column",
    "rename": "rename column",
    # kinds, as requests say them
    "judge": "judge evaluator score rate",
    "grade": "evaluator score rate judge",
    "rate": "evaluator score rate judge",
    "rating": "evaluator score rate judge",
    "score": "evaluator score rate range",
    "assess": "evaluator score judge",
    "evaluate": "evaluator score judge",
    "quality": "quality score",
    "better": "pairwise judge",
    "compare": "pairwise judge",
    "preference": "pairwise judge chosen rejected",
    "which answer": "pairwise judge",
    "classify": "label category",
    "categorize": "label category",
    "categorise": "label category",
    "tag": "label category",
    "hard": "difficulty",
    "difficulty": "difficulty",
    "easy": "difficulty",
    "summarize": "llm prompt generate text column",
    "summarise": "llm prompt generate text column",
    "summary": "llm prompt generate text column",
    "translate": "llm prompt rewrite refiner",
    "translation": "llm prompt rewrite refiner",
    "json": "json structured",
    "structured": "json structured",
    "rewrite": "refiner rewrite",
    "improve": "refiner rewrite",
    "polish": "refiner rewrite",
    "rephrase": "refiner rewrite",
    "fix grammar": "refiner rewrite",
    "generate": "generator generate synthesize",
    "create": "generator generate write synthesize",
    "synthesize": "generator generate write",
    "synthesise": "generator generate write",
    "synthetic": "generator generate write",
    "augment": "generator generate new",
    "expand": "generator generate new",
    "more": "generator new",
    "new": "generator new",
    "produce": "generator generate write synthesize",
    "answer": "answer response",
    "response": "response answer",
    "prompt": "prompt instruction",
    "instruction": "instruction",
    "llm": "llm model",
    "model": "llm model",
    "gpt": "llm model",
    # formats
    "chat": "chat conversation messages",
    "conversation": "chat conversation messages",
    "sharegpt": "chat conversation messages",
    "openai format": "chat messages",
    "messages": "chat messages",
    "alpaca": "alpaca instruction sft",
    "fine tune": "sft chat",
    "finetune": "sft chat",
    "finetuning": "sft chat",
    "sft": "sft chat instruction response",
    "instruction tuning": "sft instruction",
    "instruct tuning": "sft instruction",
    "template": "template jinja render",
    "prompt column": "template render column",
    "character": "length char",
    "format": "format",
    # math
    "math": "math problem",
    "maths": "math problem",
    "arithmetic": "math problem",
    "algebra": "math problem",
    "gsm8k": "math problem",
    "word problem": "math problem",
    "olympiad": "math problem",
    "step by step": "step reasoning solution",
    "chain thought": "step reasoning solution",
    "cot": "step reasoning solution",
    "reasoning": "reasoning step solution",
    "solve": "solution solve",
    "solution": "solution",
    "boxed": "boxed final answer",
    "final answer": "boxed final answer",
    "correct answer": "verify gold answer",
    "gold": "gold answer verify",
    "ground truth": "gold answer verify",
    "reference answer": "gold answer",
    "majority": "self-consistency majority vote",
    "vote": "self-consistency majority vote",
    "self consistency": "self-consistency majority",
    "rejection sampl": "rejection sampling",
    "ill posed": "ill-posed question verify",
    "unsolvable": "ill-posed solvability",
    "ambiguous": "ill-posed ambiguity",
    "check": "verify check",
    "verify": "verify check",
    "validate": "verify check",
    "correct": "verify correct",
    "wrong": "verify",
    # code
    "code": "code source",
    "coding": "code exercise",
    "program": "code exercise",
    "programming": "code exercise",
    "python": "code python",
    "function": "code function",
    "repo": "source file code",
    "github": "source file code",
    "source file": "source file code",
    "unit test": "test sandbox",
    "test": "test",
    "run": "execution sandbox",
    "execute": "execution sandbox",
    "sandbox": "sandbox execution",
    "minified": "line length",
    "generated code": "autogenerated",
    "auto generated": "autogenerated",
    "autogenerated": "autogenerated",
    "base64": "encoded data",
    "license": "license",
    "licence": "license",
    "self instruct": "self-instruct seed exercise",
    "exercise": "exercise",
    "back translat": "back-translation instruction",
    # text2sql
    "sql": "sql text2sql query",
    "text to sql": "text2sql sql question",
    "nl2sql": "text2sql sql question",
    "database": "sql database text2sql",
    "sqlite": "sql database sqlite",
    "table": "database sql",
    "query": "sql query",
    "spider": "text2sql spider",
    "bird": "text2sql evidence",
    "schema": "schema database",
    # rag / knowledge
    "rag": "rag retrieval document",
    "retrieval": "rag retrieval document",
    "multi hop": "multihop hop two-hop chain",
    "multihop": "multihop hop two-hop chain",
    "two hop": "multihop hop two-hop",
    "2 hop": "multihop hop two-hop",
    "hop": "multihop hop",
    "several document": "multihop hop",
    "multiple document": "multihop hop",
    "corpus": "document corpus",
    "supporting": "support span quote",
    "evidence": "support quote",
    "grounded": "support quote span",
    "hallucinat": "support quote",
    "answerable": "answerability",
    "closed book": "answerability closed-book",
    "question answer": "qa question answer",
    "qa pair": "qa question answer pair",
    "faq": "qa question answer",
    "quiz": "qa question",
    "exact match": "exact match f1",
    "f1": "f1 exact match",
    "pdf": "document pdf chunk",
    "manual": "document chunk",
    "document": "document chunk",
    "paper": "document chunk",
    "book": "document chunk",
    "report": "document chunk",
    "textbook": "document chunk",
    "knowledge": "knowledge document chunk",
    "markdown": "document chunk",
    "chunk": "chunk document",
    "split": "chunk split",
    "passage": "chunk",
    "extract text": "document text extraction",
    "scanned": "document text layer",
}


# Operators of a specialised domain fit a request only if it is about that domain: without a
# cue of the domain in the request (or its context), their score is multiplied by
# DOMAIN_MISMATCH. Generic domains (core, text, sft, llm, plugins' own) are never discounted.
# Without this, "answer each instruction with an LLM" ranks the code and math generators that
# also mention instructions above the generic `prompted_generator`.
DOMAIN_MISMATCH = 0.45
DOMAIN_CUES: dict[str, str] = {  # cues separated by spaces; hyphens join a phrase's words
    "math": """math maths mathematical arithmetic algebra algebraic geometry calculus equation
        gsm8k olympiad aime theorem proof boxed word-problem reasoning chain-of-thought cot
        step-by-step trace solution gold ground-truth final-answer majority vote
        self-consistency rejection-sampling""",
    "code": """code coding python program programming function source repo github script snippet
        test sandbox exercise leetcode humaneval license licence minified javascript java
        extension solution unit-test stub""",
    "text2sql": """sql text2sql nl2sql database sqlite query table schema spider bird db postgres
        mysql""",
    "rag": """rag retrieval retrieve retriever hop multihop corpus wiki wikipedia hotpotqa
        document evidence agentic agent bridge answerable answerability exact-match f1
        closed-book supporting gold ground-truth""",
    "knowledge": """pdf document manual handbook book paper report markdown docs chunk passage
        textbook quiz knowledge page scanned qa-pair question-answer faq""",
}


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(text))


_EXPANSION_TABLE: list[tuple[tuple[str, ...], list[str]]] = sorted(
    ((_phrase(k), tokenize(v)) for k, v in EXPANSIONS.items()), key=lambda kv: -len(kv[0])
)
_DOMAIN_TABLE: dict[str, list[tuple[str, ...]]] = {
    domain: [_phrase(cue) for cue in cues.split()] for domain, cues in DOMAIN_CUES.items()
}
_TRIGGER_WORDS = frozenset(
    [w for key, _ in _EXPANSION_TABLE for w in key]
    + [w for ps in _DOMAIN_TABLE.values() for p in ps for w in p]
)


def cued_domains(tokens: list[str]) -> set[str]:
    """The specialised domains a request's (stemmed) words point to."""
    return {d for d, phrases in _DOMAIN_TABLE.items() if any(_contains(tokens, p) for p in phrases)}


# --------------------------------------------------------------------------------------------
# Operator index


def _operator_fields(op: dict[str, Any]) -> dict[str, str]:
    body = [op.get("description") or op.get("summary") or "", op.get("kind") or ""]
    for port in (op.get("inputs") or []) + (op.get("outputs") or []):
        body += [port.get("name", ""), port.get("description", ""), port.get("details", "")]
    for param in op.get("params") or []:
        body += [param.get("name", ""), param.get("description", "")]
    for notes in (op.get("notes") or {}).values():
        body += [str(n) for n in notes] if isinstance(notes, list) else [str(notes)]
    return {
        "name": op["name"],
        "summary": op.get("summary") or "",
        "domain": op.get("domain") or "",
        "body": "\n".join(str(b) for b in body if b),
    }


class Index:
    """BM25 term statistics over a set of documents, with a query side that handles typos,
    prefixes and the expansion table."""

    def __init__(self, docs: list[tuple[str, dict[str, str]]], weights: dict[str, int]):
        self.names: list[str] = []
        self.tfs: list[dict[str, int]] = []
        self.lengths: list[int] = []
        df: Counter[str] = Counter()
        for name, fields in docs:
            tf: Counter[str] = Counter()
            for field, text in fields.items():
                for term in tokenize(text):
                    tf[term] += weights[field]
            self.names.append(name)
            self.tfs.append(dict(tf))
            self.lengths.append(sum(tf.values()))
            df.update(tf.keys())
        self.df = dict(df)
        self.n = len(self.names)
        self.avg = (sum(self.lengths) / self.n) if self.n else 1.0
        self.idf = {t: math.log(1 + (self.n - d + 0.5) / (d + 0.5)) for t, d in self.df.items()}
        self._deletes: dict[str, set[str]] | None = None

    # Typo tolerance: two words one edit apart (insertion, deletion, substitution, adjacent
    # transposition) share a one-character deletion (or one is a deletion of the other).
    def _neighbours(self, word: str) -> set[str]:
        if self._deletes is None:
            table: dict[str, set[str]] = {}
            for term in [*self.df, *_TRIGGER_WORDS]:
                if len(term) >= 4 and not term.isdigit():
                    for variant in {term, *_deletions(term)}:
                        table.setdefault(variant, set()).add(term)
            self._deletes = table
        found: set[str] = set()
        for variant in {word, *_deletions(word)}:
            found |= self._deletes.get(variant, set())
        found.discard(word)
        return found

    def correct(self, word: str) -> str | None:
        """The known word `word` is a misspelling of (one edit away), or None."""
        if word in self.df or word in _TRIGGER_WORDS or len(word) < 5 or word.isdigit():
            return None
        near = self._neighbours(word)
        if not near:
            return None
        # Prefer the most frequent in the index, then alphabetical: deterministic.
        return min(near, key=lambda t: (-self.df.get(t, 0), t))

    def read(self, text: str) -> tuple[list[str], dict[str, float]]:
        """The request's stemmed words, misspellings corrected, and the factor of each (1 for
        a word as written, TYPO_FACTOR for a corrected one)."""
        tokens: list[str] = []
        direct: dict[str, float] = {}
        for raw in words(text):
            if raw in STOP or raw.isdigit():  # "1 to 10", "512 tokens": numbers say nothing here
                continue
            term = stem(raw)
            fixed = self.correct(term)
            if fixed is not None:
                tokens.append(fixed)
                direct.setdefault(fixed, TYPO_FACTOR)
            else:
                tokens.append(term)
                if len(raw) >= 3 or raw in _KEEP_SHORT or not raw.isalpha():
                    direct[term] = 1.0
        return tokens, direct

    def query_terms(self, text: str) -> dict[str, dict[str, float]]:
        """Query groups: for each query word (and each expansion word), the indexed words it
        stands for with their factor. A group counts once, through its best match."""
        tokens, direct = self.read(text)
        groups: dict[str, dict[str, float]] = {}
        for term, factor in direct.items():
            alts = self._alternatives(term)
            if alts:
                groups[term] = {t: f * factor for t, f in alts.items()}
        # Expansions: phrases of the table found in the (corrected) request.
        added: dict[str, float] = {}
        for key, expansion in _EXPANSION_TABLE:
            if _contains(tokens, key):
                for term in expansion:
                    added[term] = EXPANSION_WEIGHT
        for term, factor in added.items():
            if term in groups and max(groups[term].values()) >= factor:
                continue  # the user's own word already counts more
            alts = self._alternatives(term)
            if alts:
                groups[f"+{term}"] = {t: f * factor for t, f in alts.items()}
        return groups

    def _alternatives(self, term: str) -> dict[str, float]:
        if term in self.df:
            return {term: 1.0}
        if len(term) >= _MIN_PREFIX:
            return {
                t: PREFIX_FACTOR
                for t in self.df
                if len(t) >= _MIN_PREFIX and (t.startswith(term) or term.startswith(t))
            }
        return {}

    def score(self, groups: dict[str, dict[str, float]]) -> list[float]:
        scores = []
        for tf, length in zip(self.tfs, self.lengths, strict=True):
            norm = K1 * (1 - B + B * length / self.avg)
            total = 0.0
            for alts in groups.values():
                best = 0.0
                for t, factor in alts.items():
                    f = tf.get(t)
                    if f:
                        best = max(best, factor * self.idf[t] * f * (K1 + 1) / (f + norm))
                total += best
            scores.append(total)
        return scores


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1 :] for i in range(len(word))]


def _contains(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in tokens
    return any(tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1))


# The operator index of the catalogue seen last, rebuilt when the catalogue changes (the
# catalogue itself is re-described only when installed operators change).
_cache: dict[str, Any] = {"entries": None, "catalogue": None, "index": None, "ops": None}


def _operator_index() -> tuple[Index, dict[str, dict[str, Any]]]:
    """The retrieval index of the installed operators. The catalogue's signature (a stat of
    every operator source file, ~10 ms) is checked once per registry listing: a process sees
    new operators after `refresh()` (or `registry.entries.cache_clear()`), as the engine does."""
    from dataflow_cli import registry
    from dataflow_cli.catalog.index import load

    entries = registry.entries()
    if _cache["entries"] is not entries:
        catalogue = load()
        if _cache["catalogue"] is not catalogue:
            ops = {
                op["name"]: op for op in catalogue["operators"] if op.get("status") == "ok" and op.get("kind")
            }
            _cache.update(
                catalogue=catalogue,
                ops=ops,
                index=Index([(name, _operator_fields(op)) for name, op in ops.items()], WEIGHTS),
            )
        _cache["entries"] = entries
    return _cache["index"], _cache["ops"]


def refresh() -> None:
    """Forget what this process knows of the installed operators, e.g. after installing a
    plugin: the next retrieval lists the entry points again and rebuilds what changed."""
    from dataflow_cli import registry

    registry.entries.cache_clear()
    _cache["entries"] = None


def _gate(
    scores: list[float], names: list[str], ops: dict[str, dict[str, Any]], cued: set[str]
) -> list[float]:
    return [
        s * DOMAIN_MISMATCH if ops[n].get("domain") in DOMAIN_CUES and ops[n].get("domain") not in cued else s
        for s, n in zip(scores, names, strict=True)
    ]


def retrieve_operators(
    query: str,
    k: int = 5,
    kinds: Iterable[str] | None = None,
    *,
    context: str | None = None,
) -> list[OperatorHit]:
    """The `k` installed operators that best match `query`, best first (only those matching a
    word of it). `kinds`: only operators of these kinds (generate, evaluate, filter, refine).
    `context`: the whole request when `query` is one of its sub-goals: its domain cues (see
    DOMAIN_CUES) count, so "judge the solutions" of a math request finds the math judges, but
    its words do not rank (they would pull every sub-goal towards the request's main topic)."""
    wanted: set[str] | None = None
    if kinds is not None:
        wanted = set([kinds] if isinstance(kinds, str) else kinds)
        unknown = wanted - set(KINDS)
        if unknown:
            raise ValueError(f"unknown operator kind(s) {sorted(unknown)}; kinds are {', '.join(KINDS)}")
    index, ops = _operator_index()
    groups = index.query_terms(query)
    tokens = index.read(query)[0]
    if context:
        tokens += index.read(context)[0]
    scores = _gate(index.score(groups), index.names, ops, cued_domains(tokens))
    ranked = sorted(
        (s, name)
        for s, name in zip(scores, index.names, strict=True)
        if s > 0 and (wanted is None or ops[name]["kind"] in wanted)
    )
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return [
        OperatorHit(
            name=name,
            kind=ops[name]["kind"],
            domain=ops[name].get("domain") or "",
            score=round(s, 4),
            summary=ops[name].get("summary") or "",
        )
        for s, name in ranked[:k]
    ]


# --------------------------------------------------------------------------------------------
# Ready pipelines


@dataclass(frozen=True)
class _Pipeline:
    name: str
    path: Path
    description: str
    operators: tuple[str, ...]
    text: dict[str, str]


def _pipeline_files() -> list[Path]:
    from dataflow_cli.resources import pipelines_dir

    return sorted(pipelines_dir().glob("*/pipeline.yaml"))


def _read_pipeline(spec: Path) -> _Pipeline | None:
    import yaml  # PyYAML: a few ms, only when pipelines are retrieved

    try:
        data = (
            yaml.load(spec.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            or {}
        )
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    stages = [s for s in data.get("stages") or [] if isinstance(s, dict)]
    ops = tuple(dict.fromkeys(s["op"] for s in stages if isinstance(s.get("op"), str)))
    description = " ".join(str(data.get("description") or "").split())
    return _Pipeline(
        name=spec.parent.name,
        path=spec,
        description=description,
        operators=ops,
        # Like an operator's docstring: the first sentence says what the pipeline is for,
        # the rest is detail (a showcase pipeline describes a lot it is not for).
        text={
            "name": f"{spec.parent.name} {data.get('name') or ''}",
            "summary": _first_sentence(description),
            "body": " ".join(
                [description[len(_first_sentence(description)) :]] + [str(s.get("name", "")) for s in stages]
            ),
        },
    )


def _first_sentence(text: str) -> str:
    match = re.search(r"[.!?](?:\s|$)", text)
    return text[: match.end()].strip() if match else text


# The ready pipelines and their index, rebuilt when a spec file or the catalogue changes.
_pipelines_cache: dict[str, Any] = {"key": None}


def _pipeline_index() -> tuple[list[_Pipeline], Index, list[str | None]]:
    op_index, ops = _operator_index()
    files = _pipeline_files()
    key = (op_index, tuple((str(f), f.stat().st_mtime_ns) for f in files))
    if _pipelines_cache["key"] != key:
        pipelines = [p for p in map(_read_pipeline, files) if p is not None]
        # Its own words only: its operators' summaries would make the longest pipeline match
        # every request about any of its operators; the operators count through `usage`.
        index = Index([(p.name, p.text) for p in pipelines], {"name": 3, "summary": 2, "body": 1})
        _pipelines_cache.update(
            key=key, value=(pipelines, index, [_pipeline_domain(p, ops) for p in pipelines])
        )
    return _pipelines_cache["value"]


def _pipeline_domain(pipeline: _Pipeline, ops: dict[str, dict[str, Any]]) -> str | None:
    """The specialised domain most of a pipeline's operators belong to, or None (generic)."""
    counts = Counter(ops[o].get("domain") for o in pipeline.operators if o in ops)
    special = [(n, d) for d, n in counts.items() if d in DOMAIN_CUES]
    return max(special)[1] if special else None


@dataclass
class _Scores:
    pipelines: list[_Pipeline]
    scores: list[float]
    key_operator: str | None  # the request's best operator


def _pipeline_scores(query: str) -> _Scores:
    """Per ready pipeline, a score in [0, 1]: TEXT_SHARE of
    - `text`: BM25 over its name, description and stage names, divided by the best pipeline's
      (relative), times how much of the request that best pipeline matches (absolute: its score
      over that of an average-length pipeline holding every query word once);
    and the rest of
    - `usage`: how well its operators match the request's best operators (top 8 over all
      operators): the geometric mean of the share of their score it holds and the share of its
      operators (up to 8) among them, so a long pipeline holding one of them scores low.
    A pipeline of a specialised domain the request gives no cue of counts DOMAIN_MISMATCH as
    much, as operators do; so does a generic pipeline when the request's best operator is of a
    specialised domain it cues (filtering source files is not web-text filtering)."""
    pipelines, index, domains = _pipeline_index()
    if not pipelines:
        return _Scores([], [], None)
    op_index, ops = _operator_index()
    groups = index.query_terms(query)
    cued = cued_domains(index.read(query)[0])
    text = index.score(groups)
    ideal = _ideal_score(index, groups)
    best = max(text)
    coverage = min(1.0, max(text) / ideal) if ideal > 0 else 0.0
    op_scores = _gate(op_index.score(op_index.query_terms(query)), op_index.names, ops, cued)
    top = sorted(
        ((s, n) for s, n in zip(op_scores, op_index.names, strict=True) if s > 0), key=lambda x: (-x[0], x[1])
    )
    top = [(s**USAGE_POWER, n) for s, n in top[:USAGE_TOP]]
    total = sum(s for s, _ in top) or 1.0
    key = top[0][1] if top else None
    key_domain = ops[key].get("domain") if key else None
    specialised = key_domain in DOMAIN_CUES and key_domain in cued
    top_names = {n for _, n in top}
    scores = []
    for p, t, domain in zip(pipelines, text, domains, strict=True):
        recall = sum(s for s, n in top if n in p.operators) / total
        precision = len(top_names.intersection(p.operators)) / max(1, min(len(p.operators), len(top)))
        usage = math.sqrt(recall * precision)
        score = TEXT_SHARE * (t / best if best > 0 else 0.0) * coverage + (1 - TEXT_SHARE) * usage
        if (domain is not None and domain not in cued) or (domain is None and specialised):
            score *= DOMAIN_MISMATCH
        scores.append(score)
    return _Scores(pipelines, scores, key)


def _ideal_score(index: Index, groups: dict[str, dict[str, float]]) -> float:
    """BM25 of an average-length document holding each query word once (its best alternative)."""
    norm = K1  # length == average: 1 - B + B * 1
    return sum(
        max(f * index.idf[t] for t, f in alts.items()) * (K1 + 1) / (1 + norm) for alts in groups.values()
    )


def retrieve_pipelines(query: str, k: int = 3) -> list[PipelineHit]:
    """The `k` ready pipelines (`dataflow init --list-templates`) that best match `query`, best
    first, with a score in [0, 1] (see `_pipeline_scores`); only those matching something."""
    scored = _pipeline_scores(query)
    pipelines = scored.pipelines
    ranked = sorted(
        zip(scored.scores, range(len(pipelines)), strict=True),
        key=lambda item: (-item[0], pipelines[item[1]].name),
    )
    return [
        PipelineHit(
            name=pipelines[i].name,
            path=pipelines[i].path,
            score=round(s, 4),
            description=pipelines[i].description,
            operators=pipelines[i].operators,
        )
        for s, i in ranked[:k]
        if s > 0
    ]


def ready_pipeline(request: str) -> PipelineHit | None:
    """The ready pipeline to start from for `request`, or None when none fits. The request's
    key operator is its best match over all operators; "rule-based" means of domain text or
    core; the default template is `dataflow init`'s (text_clean), the natural start for any
    rule-based row-cleaning job that no other pipeline is about. In order:
    1. every sub-goal unsupported (images, audio ...), or no operator matches: None;
    2. the best pipeline is generic and the key operator, not rule-based, is in no ready
       pipeline: what the request is about (labelling, translating, comparing with an LLM) is
       what none of them does: None (the key operator of a rule-based request is often a
       sibling of what a pipeline uses, e.g. `gopher_rules_filter` for `pretrain_filter`'s
       rules, so this rule is for LLM work only);
    3. the best pipeline if its score reaches READY_MIN_SCORE;
    4. the default template if the key operator is rule-based, else None."""
    from dataflow_cli.agent.intent import split_intent
    from dataflow_cli.scaffold import DEFAULT_TEMPLATE

    goals = split_intent(request)
    if goals and all(g.kind == "unsupported" for g in goals):
        return None
    scored = _pipeline_scores(request)
    if scored.key_operator is None or not scored.pipelines:
        return None
    _, ops = _operator_index()
    _, _, domains = _pipeline_index()
    rule_based = ops[scored.key_operator].get("domain") in GENERIC_RULE_DOMAINS

    def hit(i: int) -> PipelineHit:
        p = scored.pipelines[i]
        return PipelineHit(p.name, p.path, round(scored.scores[i], 4), p.description, p.operators)

    names = [p.name for p in scored.pipelines]
    default = hit(names.index(DEFAULT_TEMPLATE)) if DEFAULT_TEMPLATE in names else None
    best = min(range(len(names)), key=lambda i: (-scored.scores[i], names[i]))
    generic = domains[best] is None
    if generic and not rule_based and not any(scored.key_operator in p.operators for p in scored.pipelines):
        return None
    if scored.scores[best] >= READY_MIN_SCORE:
        return hit(best)
    return default if rule_based else None
