"""`make demo`: run pipelines/demo on the best backend the environment offers, then show the result.

Backend, first match wins:
  DATAFLOW_DEMO_LOCAL=1                          the embedded model, whatever else is set
  DATAFLOW_DEMO_API_BASE or OPENAI_BASE_URL      an OpenAI-compatible server (vLLM, SGLang,
                                                 llama.cpp server, a proxy), with OPENAI_API_KEY
                                                 as its key when set
  OPENAI_API_KEY                                 OpenAI's API
  (nothing)                                      the embedded SmolLM2-135M-Instruct, offline
DATAFLOW_DEMO_MODEL names the model for the first two (default gpt-4o-mini).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "pipelines" / "demo" / "pipeline.yaml"
RUN_DIR = REPO / ".dataflow" / "runs" / "demo"
EMBEDDED = "the embedded SmolLM2-135M-Instruct (llama.cpp, offline, no key)"


def choose_backend(env: Mapping[str, str]) -> tuple[str | None, str]:
    """The `--set` value for `backends.default` (None: the spec's embedded model) and its description."""
    if env.get("DATAFLOW_DEMO_LOCAL"):
        return None, EMBEDDED
    base = env.get("DATAFLOW_DEMO_API_BASE") or env.get("OPENAI_BASE_URL")
    has_key = bool(env.get("OPENAI_API_KEY"))
    if not base and not has_key:
        return None, EMBEDDED
    model = env.get("DATAFLOW_DEMO_MODEL") or "gpt-4o-mini"
    base = base or "https://api.openai.com/v1"
    # JSON strings are valid YAML scalars: a URL or model name with ':' or '#' stays one value.
    fields = [
        "provider: openai",
        f"model: {json.dumps(model)}",
        f"api_base: {json.dumps(base)}",
        "max_concurrency: 8",
    ]
    if has_key:  # named, never written: the key stays in the environment
        fields.append("api_key_env: OPENAI_API_KEY")
    return "backends.default={" + ", ".join(fields) + "}", f"{model} at {base}"


def _short(text: object, width: int = 160) -> str:
    return textwrap.shorten(str(text), width=width, placeholder=" ...")


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():  # a run that keeps (or rejects) nothing writes no file
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summary(stats: dict, embedded: bool) -> str:
    """What a newcomer should look at after the run: a few rows of each side and where they are."""
    output, rejects = Path(stats["output"]), Path(stats["rejects"])
    kept, rejected = _read_jsonl(output), _read_jsonl(rejects)
    lines = [
        "",
        f"== demo: {stats['rows_read']} prompts read, {stats['rows_written']} kept, "
        f"{stats['rows_rejected']} rejected",
    ]
    for row in kept[:3]:
        turns = {m["role"]: m["content"] for m in row["messages"]}
        lines += [
            f"kept     user: {_short(turns.get('user'))}",
            f"         assistant: {_short(turns.get('assistant'))}",
            f"         judge score (shown, not a gate): {row.get('judge_score')}",
        ]
    if rejected:
        # A row dropped by a check on the model's answer shows more than a duplicate prompt does.
        row = next((r for r in rejected if r.get("response") or r.get("_raw_output")), rejected[0])
        answer = row.get("response") or row.get("_raw_output")
        lines.append(f"rejected user: {_short(row.get('instruction'))}")
        if answer:
            lines.append(f"         answer: {_short(answer)}")
        lines.append(f"         dropped by stage `{row['_stage']}`: {row['_reason']}")
    lines += [
        f"output:  {output}",
        f"rejects: {rejects} (every dropped row with its stage and reason)",
        f"report:  {Path(stats['run_dir']) / 'report.html'} (open in a browser; stats.json and run.log beside it)",
        f"card:    {output.with_name(output.stem + '.card.md')} (the data card: how it was made, what to watch for)",
    ]
    if embedded:
        lines += [
            "note:    the embedded 135M model shows the mechanics, not the quality (its judge's scores "
            "do not track quality).",
            "         For a real model: OPENAI_API_KEY=... make demo, or OPENAI_BASE_URL=http://host:8000/v1 "
            "DATAFLOW_DEMO_MODEL=<name> make demo,",
            "         or dataflow run pipelines/demo/pipeline.yaml --set "
            "'backends.default={provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}'",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the demo pipeline and show its result.")
    parser.add_argument("spec", nargs="?", type=Path, default=SPEC, help="the demo spec (a copy, in tests)")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR, help="where the run's state goes")
    args = parser.parse_args(argv)
    override, description = choose_backend(os.environ)
    print(f"demo: pipelines/demo on {description}", file=sys.stderr, flush=True)
    dataflow = Path(sys.executable).with_name("dataflow")
    cmd = [str(dataflow), "run", str(args.spec), "--run-dir", str(args.run_dir)]
    if override:
        cmd += ["--set", override]
    code = subprocess.run(cmd, check=False).returncode
    if code:
        return code
    stats = json.loads((args.run_dir / "stats.json").read_text(encoding="utf-8"))
    print(summary(stats, embedded=override is None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
