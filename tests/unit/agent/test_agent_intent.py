"""Intent splitting: a request into ordered sub-goals, by rules, the same every time."""

from __future__ import annotations

import pytest
import yaml

from dataflow_cli.agent.intent import OPERATOR_KINDS, SUBGOAL_KINDS, SubGoal, fragments, split_intent
from dataflow_cli.catalog import KINDS
from tests.conftest import FIXTURES


def kinds(request: str) -> list[tuple[str, str]]:
    return [(g.kind, g.text) for g in split_intent(request)]


def test_steps_are_split_at_commas_verbs_and_sequencing_words():
    request = (
        "Clean my web scrape: remove HTML, mask emails, phone numbers and IPs, drop non-English "
        "pages, then remove near-duplicates."
    )
    assert kinds(request) == [
        ("clean", "Clean my web scrape"),
        ("clean", "remove HTML"),
        ("clean", "mask emails, phone numbers and IPs"),  # a list of nouns stays one step
        ("filter", "drop non-English pages"),
        ("dedup", "remove near-duplicates"),
    ]


def test_sentences_and_several_kinds():
    request = (
        "I have a jsonl of math problems with answers. Generate step by step solutions, check "
        "them against the gold answer and format as chat"
    )
    assert kinds(request) == [
        ("load", "I have a jsonl of math problems with answers"),
        ("generate", "Generate step by step solutions"),
        ("verify", "check them against the gold answer"),
        ("format", "format as chat"),
    ]
    assert kinds("rate the responses with an llm and keep the ones above 7") == [
        ("judge", "rate the responses with an llm"),
        ("filter", "keep the ones above 7"),
    ]


def test_a_noun_list_is_split_only_where_a_new_kind_starts():
    assert fragments("remove low quality instruction-response pairs and duplicated instructions") == [
        "remove low quality instruction-response pairs",
        "duplicated instructions",
    ]
    assert fragments("turn my PDFs into questions and answers") == ["turn my PDFs into questions and answers"]


def test_generic_verbs_belong_to_the_specific_kind():
    assert kinds("remove duplicates") == [("dedup", "remove duplicates")]
    assert kinds("remove URLs") == [("clean", "remove URLs")]
    assert kinds("remove rows with fewer than 5 words") == [("filter", "remove rows with fewer than 5 words")]
    assert kinds("rewrite the answers to be more polite") == [
        ("refine", "rewrite the answers to be more polite")
    ]


@pytest.mark.parametrize(
    "request_",
    [
        "label these images of cats",
        "transcribe our podcast audio",
        "caption every frame of my videos",
        "do OCR on scanned receipts",
        "scrape reddit and build a dataset from the comments",
    ],
)
def test_unsupported_requests(request_):
    assert {g.kind for g in split_intent(request_)} == {"unsupported"}


def test_unsupported_part_next_to_a_supported_one():
    assert kinds("transcribe podcasts and then clean the transcripts") == [
        ("unsupported", "transcribe podcasts"),
        ("clean", "clean the transcripts"),
    ]


def test_no_recognised_kind_is_one_generate_goal_and_empty_is_none():
    assert split_intent("math sft data") == [SubGoal("generate", "math sft data")]
    assert split_intent("   ") == []


def test_every_request_of_the_labelled_set_gets_known_kinds_deterministically():
    items = yaml.safe_load((FIXTURES / "agent" / "requests.yaml").read_text(encoding="utf-8"))
    for item in items:
        goals = split_intent(item["request"])
        assert goals, item["request"]
        assert {g.kind for g in goals} <= set(SUBGOAL_KINDS)
        assert all(g.text and g.text in " ".join(item["request"].split()) for g in goals)
        assert split_intent(item["request"]) == goals
        if item.get("unsupported"):
            assert any(g.kind == "unsupported" for g in goals), item["request"]


def test_operator_kinds_hint_covers_every_subgoal_kind():
    assert set(OPERATOR_KINDS) == set(SUBGOAL_KINDS)
    assert all(set(v) <= set(KINDS) for v in OPERATOR_KINDS.values())
