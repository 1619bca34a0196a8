"""Requests stream to the engine in chunks, plain templates render without Jinja, and the
request cache checkpoints off the commit path."""

from __future__ import annotations

import time

import pytest

from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.cache import CHECKPOINT_ROWS, RequestCache
from dataflow_cli.llm.engine import CHUNK, LLMEngine, LLMStats, Policy
from dataflow_cli.llm.operator import plain_template
from dataflow_cli.llm.types import Completion, Request
from dataflow_cli.prompts import render


def req(text: str) -> Request:
    return Request(({"role": "user", "content": text},))


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ---- chunks and back-pressure ---------------------------------------------------------------------


def test_the_first_calls_leave_before_the_last_prompts_are_built():
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=4))
    engine = LLMEngine({"default": backend}, None)
    answered_when_built = []

    def requests():
        for i in range(3 * CHUNK):
            answered_when_built.append(len(backend.history))
            if i == 2 * CHUNK:
                wait_until(lambda: len(backend.history) >= CHUNK)  # the first chunk was sent and answered
            yield req(f"q{i}")

    try:
        results = engine.complete("default", requests(), LLMStats(), Policy(), "stage")
    finally:
        engine.close()
    assert [r.text for r in results] == [f"fake reply to: q{i}" for i in range(3 * CHUNK)]
    assert answered_when_built[CHUNK - 1] == 0 and len(backend.history) == 3 * CHUNK


def test_a_failing_request_generator_fails_the_batch_without_hanging():
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=4))
    engine = LLMEngine({"default": backend}, None)

    def requests():
        for i in range(250):
            yield req(f"q{i}")
        raise ValueError("a prompt could not be rendered")

    try:
        with pytest.raises(ValueError, match="rendered"):
            engine.complete("default", requests(), LLMStats(), Policy(), "stage")
    finally:
        engine.close()


# ---- plain templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Write about {{ topic }}.",
        "{{a}}{{ b }}\r\nand a line\n",
        "no placeholder at all",
        "{# a comment #}{{ a }} {% raw %}{{ not a name }}{% endraw %}",
    ],
)
@pytest.mark.parametrize(
    "row",
    [
        {"topic": "x", "a": "é 😀", "b": 3},
        {"topic": 1.5, "a": [1, "two"], "b": {"k": None}},
        {"topic": True, "a": None, "b": 0.1},
    ],
)
def test_a_plain_template_renders_as_jinja_does(template, row):
    from dataflow_cli.llm.operator import LLMOperator

    op = LLMOperator.__new__(LLMOperator)
    op.prompt = template
    assert plain_template(template) is not None
    assert op.render(row) == render(template, row)


def test_only_text_and_names_make_a_plain_template():
    for template in ["{{ a | upper }}", "{{ a.b }}", "{% if a %}x{% endif %}", "{{ 'lit' }}", "{{ a + 1 }}"]:
        assert plain_template(template) is None


def test_a_name_that_is_no_column_still_goes_to_jinja():
    from jinja2 import UndefinedError

    from dataflow_cli.llm.operator import LLMOperator

    op = LLMOperator.__new__(LLMOperator)
    op.prompt = "{{ range }} and {{ missing }}"
    with pytest.raises(UndefinedError):
        op.render({"range": "r"})
    op.prompt = "{{ a }}{{ range }}"
    assert op.render({"a": "x"}) == render("{{ a }}{{ range }}", {"a": "x"})  # a Jinja global


# ---- checkpoints ----------------------------------------------------------------------------------


def test_commits_leave_checkpoints_to_their_own_thread(tmp_path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    db = tmp_path / "cache.sqlite"
    size = db.stat().st_size
    answer = Completion("an answer of some length " * 4, 10, 20, "stop")
    for start in range(0, 2 * CHECKPOINT_ROWS + 200, 100):
        cache.put_many([(f"{i:064d}", "m", answer) for i in range(start, start + 100)])
        assert cache._checkpointing is None or start >= CHECKPOINT_ROWS - 100
    assert cache._checkpointing is not None
    cache._checkpointing.result()
    assert db.stat().st_size > size + 100 * 1024  # rows moved from the WAL into the database
    assert (
        len(cache.get_many([f"{i:064d}" for i in range(2 * CHECKPOINT_ROWS + 200)]))
        == 2 * CHECKPOINT_ROWS + 200
    )
    cache.close()
