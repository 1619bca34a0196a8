"""`dataflow agent` with the embedded local model (SmolLM2-135M): how often it ends in a spec
that validates and dry-runs, and how long start-up and retrieval take.

    .venv/bin/python bench/agent_local.py [--n 16] [--limit 5] [--out /tmp/agent-bench]

Requests: the simple ones of `tests/fixtures/agent/requests.yaml` (supported, with a ready
text pipeline as their best start: text_clean, sft_filter, pretrain_filter), in file order.
Every request runs `dataflow agent REQUEST --sample S --yes --json` in a fresh process on one
sample with `text`, `instruction` and `response` columns. Figures on stdout (JSON at the end);
wall times on a shared machine are pessimistic, CPU times are given beside them.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SIMPLE = {"text_clean", "sft_filter", "pretrain_filter"}
ROWS = [
    (
        "Explain what a hash table is.",
        "A hash table maps keys to values by hashing each key to a bucket of an array.",
    ),
    ("hi", "Hello!"),
    (
        "Explain what a hash table is.",
        "A hash table maps keys to values by hashing each key to a bucket of an array.",
    ),
    (
        "What is the capital of France?",
        "As an AI language model, I cannot browse the internet, but it is Paris.",
    ),
    (
        "Write a haiku about autumn leaves.",
        "Red leaves drift and fall, the cold wind carries them home, silence on the ground.",
    ),
    (
        "Give three tips for clear emails.",
        "Put the request first, keep it short, and end with one clear next step. Visit https://example.com",
    ),
    ("Translate 'good morning' to German.", "Guten Morgen."),
    (
        "Summarize the water cycle.",
        "Water evaporates, condenses into clouds, falls as rain or snow and flows back to the sea.",
    ),
    (
        "Why is the sky blue?",
        "Air scatters short blue wavelengths of sunlight more than red ones, so the sky looks blue.",
    ),
    ("List two prime numbers.", "Two and three are prime numbers, each divisible only by one and itself."),
    ("Quelle heure est-il ?", "Il est midi."),
    (
        "What does CPU stand for?",
        "CPU stands for central processing unit, the chip that executes a program's instructions.",
    ),
]


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/agent-bench"))
    parser.add_argument("--backend", default="local")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sample = args.out / "sample.jsonl"
    sample.write_text(
        "".join(json.dumps({"text": f"{i} {r}", "instruction": i, "response": r}) + "\n" for i, r in ROWS),
        encoding="utf-8",
    )
    items = yaml.safe_load((REPO / "tests/fixtures/agent/requests.yaml").read_text(encoding="utf-8"))
    chosen = [it for it in items if not it.get("unsupported") and it.get("pipeline") in SIMPLE][: args.n]
    dataflow = [sys.executable, "-m", "dataflow_cli"]

    helps = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([*dataflow, "agent", "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - started)

    rows = []
    for n, item in enumerate(chosen):
        spec = args.out / f"r{n:02d}" / "pipeline.yaml"
        started, cpu0 = time.time(), cpu_children()
        done = subprocess.run(
            [
                *dataflow,
                "agent",
                item["request"],
                "--sample",
                str(sample),
                "-o",
                str(spec),
                "--yes",
                "--json",
                "--limit",
                str(args.limit),
                "--backend",
                args.backend,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        wall, cpu = time.time() - started, cpu_children() - cpu0
        try:
            result = json.loads(done.stdout)
        except ValueError:
            result = {"status": "crash", "message": done.stderr[-500:]}
        valid = (
            spec.exists()
            and subprocess.run([*dataflow, "validate", str(spec)], capture_output=True).returncode == 0
        )
        dry = result.get("dry_run") or {}
        dry_ok = bool(dry) and not dry.get("error") and dry.get("rows_read", 0) > 0
        trace = spec.with_name(spec.name + ".trace.jsonl")
        events = [json.loads(x) for x in trace.read_text().splitlines()] if trace.exists() else []
        retrieve = next((e for e in events if e["step"] == "retrieve"), None)
        row = {
            "request": item["request"][:70],
            "status": result.get("status"),
            "exit": done.returncode,
            "validates": valid,
            "dry_runs": dry_ok,
            "rows_kept": dry.get("rows_written"),
            "source": result.get("source"),
            "stages": [s["op"] for s in result.get("stages", [])],
            "model_calls": (result.get("model") or {}).get("calls"),
            # How much of what the request needs ended up in the spec (helper 7's labels).
            "labelled_ops_in_spec": round(
                len(set(item["operators"]) & {s["op"] for s in result.get("stages", [])})
                / len(item["operators"]),
                2,
            )
            if item.get("operators")
            else None,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "to_retrieval_s": round(retrieve["at"] - started, 2) if retrieve else None,
            "retrieval_s": retrieve["seconds"] if retrieve else None,
            "message": (result.get("message") or "")[:200],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    ok = [r for r in rows if r["validates"] and r["dry_runs"]]
    summary = {
        "backend": args.backend,
        "requests": len(rows),
        "validates_and_dry_runs": len(ok),
        "share": round(len(ok) / len(rows), 3) if rows else None,
        "status_ok (dry run kept rows)": sum(r["status"] == "ok" for r in rows),
        "labelled_ops_in_spec_mean": round(
            statistics.mean(
                [r["labelled_ops_in_spec"] for r in rows if r["labelled_ops_in_spec"] is not None] or [0]
            ),
            3,
        ),
        "help_s_median": round(statistics.median(helps), 3),
        "to_retrieval_s_median": statistics.median(
            [r["to_retrieval_s"] for r in rows if r["to_retrieval_s"]] or [0]
        ),
        "retrieval_s_median": statistics.median([r["retrieval_s"] for r in rows if r["retrieval_s"]] or [0]),
        "wall_s_median": statistics.median([r["wall_s"] for r in rows] or [0]),
        "cpu_s_median": statistics.median([r["cpu_s"] for r in rows] or [0]),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
