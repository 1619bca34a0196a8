"""Step 2, data inspection: what the sample holds (columns, types, sample values, lengths).

The sample is read with the product's own readers (`dataflow_cli.io`), so every input format a
spec accepts (Parquet, JSONL, JSON, CSV, a folder or glob of documents) can be inspected, and a
file the run would refuse is refused here with the reader's own `file:line` message.

Without a sample the agent designs the input columns from the sub-goals and writes a small
placeholder sample, saying so: a dry run needs rows, and a user must know they were invented.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_ROWS = 200  # enough for types and lengths; the dry run reads its own rows
TEXT_TYPES = ("string", "large_string")


@dataclass
class ColumnProfile:
    name: str
    type: str
    nulls: int
    examples: list[str]
    mean_length: float | None = None  # characters, for text columns
    max_length: int | None = None


@dataclass
class SampleProfile:
    path: str
    rows: int  # rows looked at (at most MAX_ROWS)
    columns: dict[str, ColumnProfile]
    invented: bool = False  # columns designed by the agent, not read from the user's data
    notes: list[str] = field(default_factory=list)

    def text_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.type in TEXT_TYPES and not c.name.startswith("_")]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "columns": {k: asdict(v) for k, v in self.columns.items()}}

    def describe(self) -> str:
        """A few lines for the model's prompt."""
        lines = []
        for c in self.columns.values():
            example = (
                (c.examples[0][:60] + "...")
                if c.examples and len(c.examples[0]) > 60
                else (c.examples or [""])[0]
            )
            lines.append(f"- {c.name} ({c.type}): e.g. {example!r}")
        return "\n".join(lines)


def inspect_sample(path: Path, max_rows: int = MAX_ROWS) -> SampleProfile:
    """Profile the first rows of `path` (a file, glob or folder of documents)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from dataflow_cli.io.inputs import iter_batches, read_schema
    from dataflow_cli.io.paths import expand_inputs

    paths = expand_inputs(str(path), Path.cwd())
    schema = read_schema(paths)
    tables = []
    seen = 0
    for table in iter_batches(paths, batch_size=max_rows, limit=max_rows):
        tables.append(table)
        seen += table.num_rows
        if seen >= max_rows:
            break
    table = pa.concat_tables(tables) if tables else None
    columns: dict[str, ColumnProfile] = {}
    for name, type_name in schema.items():
        if table is None or name not in table.column_names:
            columns[name] = ColumnProfile(name, type_name, 0, [])
            continue
        column = table.column(name)
        values = [v for v in column.to_pylist() if v is not None]
        examples = [_short(v) for v in values[:3]]
        profile = ColumnProfile(name, type_name, column.null_count, examples)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            lengths = pc.utf8_length(column)
            if values:
                profile.mean_length = round(float(pc.mean(lengths).as_py()), 1)
                profile.max_length = int(pc.max(lengths).as_py())
        columns[name] = profile
    return SampleProfile(str(path), table.num_rows if table is not None else 0, columns)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


# Columns the agent designs when there is no sample, by what the request wants to do.
_DESIGNS: dict[str, dict[str, list[str]]] = {
    "generate": {
        "topic": ["photosynthesis", "binary search", "the French revolution", "compound interest"],
    },
    "pairs": {
        "instruction": [
            "Explain what a hash table is.",
            "Give three tips for writing clear emails.",
            "What causes the seasons on Earth?",
            "Summarize the plot of Hamlet in two sentences.",
        ],
        "response": [
            "A hash table maps keys to values by hashing each key to a slot in an array.",
            "Keep it short, put the request in the first line, and end with a clear next step.",
            "The tilt of Earth's axis changes how directly sunlight hits each hemisphere over the year.",
            "Prince Hamlet seeks revenge on his uncle for his father's murder; nearly everyone dies.",
        ],
    },
    "text": {
        "text": [
            "The quick brown fox jumps over the lazy dog. It was a sunny day in the park.",
            "Buy now!!! Click here click here click here for the best deals on watches.",
            "Photosynthesis converts light energy into chemical energy stored in glucose.",
            "The quick brown fox jumps over the lazy dog. It was a sunny day in the park.",
        ],
    },
}


def design_columns(request: str, subgoal_kinds: list[str], path: Path) -> SampleProfile:
    """Invent input columns fitting the request and write them as a small JSONL sample at `path`."""
    words = request.lower()
    if subgoal_kinds and subgoal_kinds[0] == "generate":
        design = "generate"  # new data from seeds: one topic per row
    elif any(w in words for w in ("instruction", "response", "sft", "answer", "q&a", "chat", "pairs")):
        design = "pairs"
    else:
        design = "text" if any(w in words for w in ("text", "document", "web", "page")) else "pairs"
    columns = _DESIGNS[design]
    n = len(next(iter(columns.values())))
    rows = [{name: values[i] for name, values in columns.items()} for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    profile = inspect_sample(path)
    profile.invented = True
    profile.notes.append(
        f"no --sample given: the agent designed the input columns ({', '.join(columns)}) and wrote "
        f"{n} placeholder rows to `{path}`; replace them with your data"
    )
    return profile
