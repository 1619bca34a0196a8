"""Keep secrets out of everything people and files see.

A run reads secrets (API keys from the variables named by `api_key_env`, credentials in
backend headers); a server may quote them back in an error body (proxies echo the whole
`Authorization` header), and that text then flows into error messages, log lines, reject
reasons, stats and reports. Rather than trusting every producer to scrub its own text, the
run registers each secret value here once, and every sink passes what it shows or writes
through `redact`: the error printer and `--json` (cli/common.py), the run log (a logging
filter), the run directory's JSON files, and the reasons and raw answers of rejected rows
(scrubbed where a stage's result is recorded, before checkpoints, rejects and stats see it).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

MASK = "***"
# Shorter values would blank out ordinary text (a 2-letter "key" matches everywhere) and are
# not real credentials anyway.
MIN_LENGTH = 4

_SECRETS: tuple[str, ...] = ()  # longest first, so a secret containing another is masked whole
_LOCK = threading.Lock()
# Config keys whose string values are credentials themselves (headers, litellm `extra`).
# Anchored at the end, so `max_tokens` or `tokenizer` are not mistaken for credentials.
_SECRET_KEY = re.compile(
    r"(^|[-_])(auth|authorization|api[-_]?key|token|access[-_]?token|secret|password)$", re.IGNORECASE
)


def add(value: str | None) -> None:
    """Register a secret value; from now on `redact` masks it."""
    global _SECRETS
    if not value or len(value) < MIN_LENGTH:
        return
    values = {value}
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("bearer", "basic", "token") and len(rest) >= MIN_LENGTH:
        values.add(rest)  # an `Authorization: Bearer <key>` header: the key alone is secret too
    with _LOCK:
        if values <= set(_SECRETS):
            return
        _SECRETS = tuple(sorted(set(_SECRETS) | values, key=len, reverse=True))


def add_env(name: str | None) -> str | None:
    """Register the value of environment variable `name` (if set) and return it."""
    value = os.environ.get(name) if name else None
    add(value)
    return value


def add_config(config: Any) -> None:
    """Register every secret a backend config reads: the variables named by `*api_key_env`
    fields, and string values under credential-like keys (e.g. an `Authorization` header)."""
    data = config.model_dump() if hasattr(config, "model_dump") else config

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if key.endswith("api_key_env"):
                add_env(value)
            elif _SECRET_KEY.search(key):
                add(value)

    walk(data)


def active() -> bool:
    return bool(_SECRETS)


def registered() -> tuple[str, ...]:
    """The secrets masked in this process, for a worker process that must mask them too."""
    return _SECRETS


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_json(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with secrets masked in keys and strings."""
    if not _SECRETS:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_json(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v) for v in value]
    return value


def redact_columns(table: Any, names: tuple[str, ...]) -> Any:
    """A pyarrow table with secrets masked in its string columns among `names`."""
    if not _SECRETS:
        return table
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in names:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        for secret in _SECRETS:
            column = pc.replace_substring(column, pattern=secret, replacement=MASK)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's final message (and its traceback) before any handler
    formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
