"""pipelines/agentic_rag_multihop end to end.

On scripted fake backends (an oracle that writes planned QA pairs and answers a question only
when the facts it needs are in its prompt): every stage keeps and drops the planned rows with
the planned reasons, the judge runs on its own backend, and rows stay aligned and accounted
for when model calls fail or return nothing. On the embedded local model: shape only.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from dataflow_cli.llm.backends.fake import FakeBackend
from tests.conftest import REPO, read_jsonl

pytest.importorskip("bm25s")

PIPELINE = REPO / "pipelines" / "agentic_rag_multihop"
CORPUS = {row["id"]: row for row in read_jsonl(PIPELINE / "data" / "corpus.jsonl")}


def sentence(doc_id: str, start: str) -> str:
    text = CORPUS[doc_id]["text"]
    at = text.index(start)
    return text[at : text.index(".", at) + 1]


# Planned QA pairs per document: (question, answer, supporting sentence).
ATOMIC = {
    "town-hollowmere": [
        ("Which river flows through Hollowmere?", "Tarrow", sentence("town-hollowmere", "Hollowmere is")),
        ("In what year was Hollowmere founded?", "1142", sentence("town-hollowmere", "It was founded")),
    ],
    "town-ostby": [("In what year was Ostby founded?", "988", sentence("town-ostby", "It was founded"))],
    "town-kestrel-bay": [
        (
            "Who designed the lighthouse at Kestrel Bay?",
            "Mara Quill",
            "The lighthouse was designed by Mara Quill.",
        )
    ],
    "town-tollhaven": [
        ("What is the capital of the Vale of Orrin?", "Tollhaven", sentence("town-tollhaven", "Tollhaven is"))
    ],
    "river-tarrow": [("How long is the Tarrow?", "96 km", sentence("river-tarrow", "The Tarrow"))],
    "river-osk": [
        ("How long is the Osk?", "54 km", sentence("river-osk", "The Osk")),
        ("Where does the Osk rise?", "Lake Imber", sentence("river-osk", "The Osk")),
    ],
    "river-fennet": [("Where does the Fennet rise?", "Lake Imber", sentence("river-fennet", "The Fennet"))],
    "person-mara-quill": [
        ("Where was Mara Quill born?", "Ostby", sentence("person-mara-quill", "Mara Quill"))
    ],
}
FACT = {q: (a, s) for pairs in ATOMIC.values() for q, a, s in pairs}
# The composed question of each planned chain, and the facts a reader needs to answer it.
BRIDGE_MARA = "In what year was the town where Mara Quill was born founded?"
BRIDGE_SHORTCUT = "How long is the river that flows through Hollowmere?"
COMPARISON = "Which is longer, the Tarrow or the Osk?"
INTERSECTION = "Which lake do the Osk and the Fennet both rise in?"
COMPOSED = {
    ("Where was Mara Quill born?", "In what year was Ostby founded?"): BRIDGE_MARA,
    ("Which river flows through Hollowmere?", "How long is the Tarrow?"): BRIDGE_SHORTCUT,
    ("How long is the Tarrow?", "How long is the Osk?"): COMPARISON,
    ("Where does the Osk rise?", "Where does the Fennet rise?"): INTERSECTION,
}
READER = {
    **{q: (a, [s]) for q, (a, s) in FACT.items()},
    BRIDGE_MARA: ("988", [FACT["Where was Mara Quill born?"][1], FACT["In what year was Ostby founded?"][1]]),
    # The Tarrow's document names Hollowmere: it answers this "bridge" on its own.
    BRIDGE_SHORTCUT: ("96 km", [FACT["How long is the Tarrow?"][1]]),
    COMPARISON: ("Tarrow", [FACT["How long is the Tarrow?"][1], FACT["How long is the Osk?"][1]]),
    INTERSECTION: (
        "Lake Imber",
        [FACT["Where does the Osk rise?"][1], FACT["Where does the Fennet rise?"][1]],
    ),
}
KNOWN = {"What is the capital of the Vale of Orrin?": "Tollhaven"}  # answered even closed-book
EMPTY_FOR = set()  # document ids whose QA request gets an empty answer


def oracle(request) -> str:
    prompt = request.messages[-1]["content"]
    if prompt.startswith("Write up to"):
        text = prompt.split("Document:\n", 1)[1].split("\n\nRules:", 1)[0]
        doc_id = next(i for i, row in CORPUS.items() if row["text"] == text)
        if doc_id in EMPTY_FOR:
            return ""
        pairs = [{"question": q, "answer": a, "support": s} for q, a, s in ATOMIC.get(doc_id, [])]
        return json.dumps({"pairs": pairs})
    if prompt.startswith("You combine facts"):
        questions = tuple(re.findall(r"^Fact \d+ \(about [^)]*\): (.*?) Answer: ", prompt, re.M))
        return json.dumps({"question": COMPOSED.get(questions, "Which planned question is this?")})
    question = re.search(r"^Question: (.*)$", prompt, re.M).group(1)
    gold, needed = READER.get(question, ("?", ["(never in a prompt)"]))
    answer = KNOWN.get(question) or (gold if all(fact in prompt for fact in needed) else "unknown")
    return json.dumps({"reason": "from the documents", "answer": answer})


@pytest.fixture
def scripted(monkeypatch):
    """Every fake backend answers with the oracle; returns the (model, prompt) of each request."""
    seen: list[tuple[str, str]] = []
    original = FakeBackend.__init__

    def init(self, config=None, script=None):
        def answer(request):
            seen.append((self.config.model, request.messages[-1]["content"]))
            return oracle(request)

        original(self, config, script or answer)

    monkeypatch.setattr(FakeBackend, "__init__", init)
    return seen


def copy_pipeline(tmp_path: Path, backends: dict, judge: bool = False) -> Path:
    target = tmp_path / "agentic_rag_multihop"
    shutil.copytree(PIPELINE, target, ignore=shutil.ignore_patterns("out", ".dataflow"))
    spec = target / "pipeline.yaml"
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    data["backends"] = backends
    if judge:
        for stage in data["stages"]:
            if stage["op"] == "rag_answerability_filter":
                stage["backend"] = "judge"
    spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return spec


def accounted(stats: dict) -> bool:
    return (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )


def rejects_of(spec: Path) -> list[dict]:
    return read_jsonl(spec.parent / "out" / "rejects" / "rag_multihop_sft.rejects.jsonl")


@pytest.mark.slow
def test_scripted_run_keeps_verified_multihop_questions_and_says_why_others_go(
    cli, tmp_path, monkeypatch, scripted
):
    monkeypatch.chdir(tmp_path)
    backends = {
        "default": {"provider": "fake", "model": "writer"},
        "judge": {"provider": "fake", "model": "judge"},
    }
    spec = copy_pipeline(tmp_path, backends, judge=True)
    stats = cli.json("run", spec)
    assert accounted(stats) and stats["rows_read"] == 64
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["atomic_qa"]["rows_out"] == 10 and stats["rows_added_by_fanout"] == 2

    rows = read_jsonl(spec.parent / "out" / "rag_multihop_sft.jsonl")
    assert [(r["composition"], r["multihop_question"], r["multihop_answer"]) for r in rows] == [
        ("comparison", COMPARISON, "Tarrow"),
        ("intersection", INTERSECTION, "Lake Imber"),
        ("bridge", BRIDGE_MARA, "988"),
    ]
    mara = rows[2]
    assert mara["hop_doc_ids"] == ["person-mara-quill", "town-ostby"]
    assert [h["answer"] for h in mara["hops"]] == ["Ostby", "988"]
    assert [c["check"] for c in mara["multihop_checks"]] == [
        "with_documents",
        "closed_book",
        "single_document",
        "retrieval",
    ]
    assert all(c["passed"] for c in mara["multihop_checks"]) and mara["exact_match"] and mara["f1"] == 1.0
    user, assistant = mara["messages"]
    assert user["role"] == "user" and user["content"].endswith(f"Question: {BRIDGE_MARA}")
    assert CORPUS["town-ostby"]["text"] in user["content"]
    assert assistant["content"] == (
        f'Step 1: Where was Mara Quill born? Ostby (from "Mara Quill": "{FACT["Where was Mara Quill born?"][1]}")\n'
        f'Step 2: In what year was Ostby founded? 988 (from "Ostby": "{FACT["In what year was Ostby founded?"][1]}")\n'
        "Answer: 988"
    )

    dropped = {(r["_stage"], r["_reason"].split(":")[0]): r for r in rejects_of(spec)}
    assert dropped[("support", "support not in document")]["id"] == "town-kestrel-bay"
    contaminated = dropped[("decontam_atomic", "contaminated")]
    assert contaminated["question"] == "In what year was Hollowmere founded?"
    assert "reference id orrin-bench-001" in contaminated["_reason"]
    assert dropped[("atomic_checks", "answered correctly closed-book")]["id"] == "town-tollhaven"
    shortcut = dropped[("multihop_checks", "answerable from a single document")]
    assert shortcut["multihop_question"] == BRIDGE_SHORTCUT
    assert shortcut["_reason"] == (
        'answerable from a single document: document 2 (`river-tarrow`) alone: answered "96 km" (F1 1.00)'
    )
    no_partner = sorted(r["question"] for r in rejects_of(spec) if r["_reason"] == "no hop partner")
    assert no_partner == [
        "How long is the Osk?",
        "In what year was Ostby founded?",
        "Where does the Fennet rise?",
    ]
    assert sum(r["_reason"] == "generated no rows" for r in rejects_of(spec)) == 64 - len(ATOMIC)

    # The judge answered every check; the writer wrote every pair and question.
    judged = {model for model, prompt in scripted if prompt.startswith("Answer the question")}
    written = {model for model, prompt in scripted if not prompt.startswith("Answer the question")}
    assert judged == {"judge"} and written == {"writer"}
    # The BM25 index was built once, beside the run.
    assert len(list((tmp_path / ".dataflow" / "rag-index").iterdir())) == 1

    again = cli.json("run", spec)  # resumed: every stage reused, nothing asked again
    assert again["rows_written"] == 3 and len(scripted) == sum(
        s["llm"]["requests"] for s in stats["stages"] if s["llm"]
    )


@pytest.mark.slow
def test_rows_stay_aligned_and_accounted_for_when_model_calls_fail(cli, tmp_path, monkeypatch, scripted):
    monkeypatch.chdir(tmp_path)
    EMPTY_FOR.add("river-fennet")  # its QA request gets an empty answer
    try:
        failing = {
            "provider": "fake",
            "failures": [
                {"match": COMPARISON, "kind": "bad_request", "status": 400},  # every check of that row
                {"match": "Question: What is the capital of the Vale", "kind": "server", "status": 500},
            ],
            "max_retries": 1,
            "backoff": 0.01,
        }
        spec = copy_pipeline(tmp_path, {"default": failing})
        stats = cli.json("run", spec)
    finally:
        EMPTY_FOR.clear()
    assert accounted(stats)
    rejects = rejects_of(spec)
    kept = read_jsonl(spec.parent / "out" / "rag_multihop_sft.jsonl") if stats["rows_written"] else []
    assert len(kept) == stats["rows_written"] and len(rejects) == stats["rows_rejected"]

    fennet = next(r for r in rejects if r["id"] == "river-fennet")
    assert (fennet["_stage"], fennet["_reason"], fennet["_raw_output"]) == (
        "atomic_qa",
        "llm invalid_output",
        "",
    )
    capital = next(r for r in rejects if r.get("question") == "What is the capital of the Vale of Orrin?")
    assert (capital["_stage"], capital["_reason"]) == (
        "atomic_checks",
        "with_documents: llm server (HTTP 500)",
    )
    assert capital["id"] == "town-tollhaven" and capital["support"] in capital["text"]
    comparison = next(r for r in rejects if r.get("multihop_question") == COMPARISON)
    assert (comparison["_stage"], comparison["_reason"]) == (
        "multihop_checks",
        "with_documents: llm bad_request (HTTP 400)",
    )
    # Nothing shifted: every row still carries its own document's values.
    for row in rejects:
        if row.get("support") and row["_stage"] != "support":
            assert row["support"] in row["text"], row
        if row.get("hops"):
            assert all(h["support"] in d for h, d in zip(row["hops"], row["hop_documents"], strict=True))
    # Without Fennet's pair there is no intersection; the bridge through Mara Quill is untouched.
    assert [(r["multihop_question"], r["hop_doc_ids"]) for r in kept] == [
        (BRIDGE_MARA, ["person-mara-quill", "town-ostby"])
    ]
    assert all(
        h["support"] in d
        for h, d in zip(
            kept[0]["hops"], kept[0]["messages"][0]["content"].split("Document ")[1:], strict=True
        )
    )
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["multihop_checks"]["rows_in"] == 3  # the comparison, the shortcut, the bridge


@pytest.mark.slow
@pytest.mark.timeout(900)  # one document, yet grammar-constrained JSON on a busy 2-core machine is slow
def test_on_the_embedded_model(cli, tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "agentic_rag_multihop"
    shutil.copytree(PIPELINE, target, ignore=shutil.ignore_patterns("out", ".dataflow"))
    spec = target / "pipeline.yaml"
    stats = cli.json(
        "run",
        spec,
        "--limit",
        "1",
        "--set",
        "stages.atomic_qa.params.max_pairs=1",
        "--set",
        "stages.atomic_qa.params.max_tokens=128",
    )
    out = target / "out"
    kept = read_jsonl(out / "rag_multihop_sft.jsonl") if stats["rows_written"] else []
    rejected = read_jsonl(next(out.rglob("*.rejects.jsonl"))) if stats["rows_rejected"] else []
    assert stats["rows_read"] == 1 and accounted(stats)
    assert len(kept) == stats["rows_written"] and len(rejected) == stats["rows_rejected"]
    for row in rejected:  # the model is tiny: check the shape, never the content
        assert row["_stage"] and row["_reason"]
    for row in kept:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["composition"] in ("bridge", "comparison", "intersection") and len(row["hops"]) == 2
    atomic = next(s for s in stats["stages"] if s["name"] == "atomic_qa")
    assert atomic["llm"]["requests"] == 1
