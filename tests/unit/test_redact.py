"""The one place secrets are masked: values registered from backend configs, masked in text,
JSON, Arrow columns and log records."""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest

from dataflow_cli import redact
from dataflow_cli.llm.backends.fake import FakeConfig
from dataflow_cli.llm.backends.openai import OpenAIConfig


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    monkeypatch.setattr(redact, "_SECRETS", ())


def test_registered_values_are_masked_wherever_they_appear():
    redact.add("sk-abc123")
    assert redact.redact("key sk-abc123 and again sk-abc123.") == "key *** and again ***."
    assert redact.redact("nothing here") == "nothing here"


def test_short_values_are_not_secrets():
    redact.add("ab")
    redact.add("")
    redact.add(None)
    assert not redact.active() and redact.redact("ab ab") == "ab ab"


def test_a_bearer_header_registers_the_bare_key_too():
    redact.add("Bearer tok-0123456789")
    assert redact.redact("got tok-0123456789") == "got ***"
    assert redact.redact("Authorization: Bearer tok-0123456789") == "Authorization: ***"


def test_a_longer_secret_is_masked_whole_before_one_it_contains():
    redact.add("abcd")
    redact.add("abcdefgh")
    assert redact.redact("abcdefgh") == "***"


def test_backend_configs_register_key_variables_and_credential_headers(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-from-env-1")
    redact.add_config(
        OpenAIConfig(
            provider="openai",
            api_key_env="MY_KEY",
            headers={"X-Api-Key": "hdr-secret-2", "User-Agent": "dataflow-test"},
        )
    )
    redact.add_config(FakeConfig(provider="fake"))  # nothing secret in it
    redact.add_config({"engine_args": {"tokenizer": "org/tok-model"}, "extra": {"api_key": "lit-key-3"}})
    text = "sk-from-env-1 hdr-secret-2 lit-key-3 dataflow-test org/tok-model"
    assert redact.redact(text) == "*** *** *** dataflow-test org/tok-model"


def test_an_unset_key_variable_registers_nothing(monkeypatch):
    monkeypatch.delenv("MISSING_KEY", raising=False)
    redact.add_config({"api_key_env": "MISSING_KEY"})
    assert not redact.active()


def test_json_values_and_keys_are_masked():
    redact.add("sk-json-7")
    value = {"reasons": {"bad sk-json-7": 2}, "list": ["sk-json-7", 3, None]}
    assert redact.redact_json(value) == {"reasons": {"bad ***": 2}, "list": ["***", 3, None]}


def test_arrow_string_columns_are_masked_only_where_asked():
    redact.add("sk-arrow-9")
    table = pa.table({"_reason": ["x sk-arrow-9", None], "text": ["sk-arrow-9", "y"], "n": [1, 2]})
    out = redact.redact_columns(table, ("_reason", "n", "missing"))
    assert out.column("_reason").to_pylist() == ["x ***", None]
    assert out.column("text").to_pylist() == ["sk-arrow-9", "y"]  # data columns are the user's


def test_log_records_are_masked_with_their_arguments_and_traceback():
    redact.add("sk-log-5")
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed: %s", ("key sk-log-5",), None)
    try:
        raise RuntimeError("boom sk-log-5")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert redact.RedactingFilter().filter(record)
    formatted = logging.Formatter("%(message)s").format(record)
    assert "sk-log-5" not in formatted and "failed: key ***" in formatted and "boom ***" in formatted
