"""Agent retrieval benchmark: quality on the labelled requests, index build time, query latency.

    python bench/agent_retrieval.py [--set tests/fixtures/agent/requests.yaml] [--k 5] [--misses]

Quality, over `tests/fixtures/agent/requests.yaml` (labels and labelling rules in its header):

- operator recall@k: per needed operator (micro-average over all labelled operators of the
  supported requests), found if it is among the top k of at least one of the queries the agent
  makes for the request: the whole request, and each sub-goal of `split_intent` (its fragment,
  with the whole request as context), load and unsupported sub-goals excluded. That is the
  candidate list the planner sees (k per query, not k for a whole multi-step request, whose
  pipeline needs 5+ operators). The candidate list's mean size is printed beside it, and so is
  the strict whole-request recall@k (one query, k results) for comparison. Sub-goal queries are
  restricted to the operator kinds of their sub-goal kind (`intent.OPERATOR_KINDS`).
- ready-pipeline top-1 accuracy: `ready_pipeline(request)` (the top hit above the threshold,
  None when the request is unsupported or nothing fits) equals the label (null included; a
  label `a|b` accepts either);
  printed also over the requests with a pipeline label, without the threshold (plain top-1).

Speed: the first retrieval in a fresh process with an empty cache directory (the catalogue is
described: every operator module imported: "cold"), with the cache written by that run
("warm": the catalogue read from disk, the retrieval index built from it, no operator imported;
the heavy modules it did import are listed), then per-query latency in one process. Wall and
CPU times; with 2 busy cores the wall figures are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_SET = REPO / "tests" / "fixtures" / "agent" / "requests.yaml"
SKIP_SUBGOALS = ("load", "unsupported")


def load_set(path: Path = DEFAULT_SET) -> list[dict]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def queries(request: str) -> list[tuple[str, str | None, tuple[str, ...] | None]]:
    """The (query, context, operator kinds) the agent retrieves operators for, for one request:
    the request itself, then each sub-goal with the operator kinds that serve its kind."""
    from dataflow_cli.agent.intent import OPERATOR_KINDS, split_intent

    out: list[tuple[str, str | None, tuple[str, ...] | None]] = [(request, None, None)]
    for goal in split_intent(request):
        if goal.kind in SKIP_SUBGOALS:
            continue
        query = (goal.text, request, OPERATOR_KINDS[goal.kind] or None)
        if query not in out:
            out.append(query)
    return out


def candidates(request: str, k: int) -> list[str]:
    from dataflow_cli.agent.retrieve import retrieve_operators

    found: dict[str, None] = {}
    for query, context, kinds in queries(request):
        for hit in retrieve_operators(query, k=k, kinds=kinds, context=context):
            found.setdefault(hit.name)
    return list(found)


def evaluate(items: list[dict], k: int = 5) -> dict:
    """Recall@k and pipeline top-1 figures over labelled `items` (see the module docstring)."""
    from dataflow_cli.agent.retrieve import ready_pipeline, retrieve_operators, retrieve_pipelines

    needed = found = found_whole = 0
    sizes = []
    misses: list[dict] = []
    pipe_right = 0
    plain_total = plain_right = 0
    pipe_misses: list[dict] = []
    for item in items:
        request = item["request"]
        ops = item.get("operators") or []
        if ops:
            pool = candidates(request, k)
            whole = {h.name for h in retrieve_operators(request, k=k)}
            sizes.append(len(pool))
            for op in ops:
                # "a|b": either serves (labelling rules in the set's header).
                either = set(op.split("|"))
                needed += 1
                found += bool(either & set(pool))
                found_whole += bool(either & whole)
                if not either & set(pool):
                    misses.append({"request": request, "operator": op, "candidates": pool})
        expected = item.get("pipeline")
        accepted = set(expected.split("|")) if expected else {None}
        got = ready_pipeline(request)
        got_name = got.name if got else None
        pipe_right += got_name in accepted
        if got_name not in accepted:
            top = [(h.name, h.score) for h in retrieve_pipelines(request, k=3)]
            pipe_misses.append({"request": request, "expected": expected, "got": got_name, "top": top})
        if expected is not None:
            plain_total += 1
            top1 = retrieve_pipelines(request, k=1)
            plain_right += bool(top1) and top1[0].name in accepted
    return {
        "requests": len(items),
        "needed_operators": needed,
        "operator_recall": found / needed if needed else 0.0,
        "operator_recall_whole_request": found_whole / needed if needed else 0.0,
        "mean_candidates": statistics.mean(sizes) if sizes else 0.0,
        "pipeline_top1": pipe_right / len(items) if items else 0.0,
        "pipeline_top1_labelled_no_threshold": plain_right / plain_total if plain_total else 0.0,
        "operator_misses": misses,
        "pipeline_misses": pipe_misses,
    }


_PROBE = """
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from dataflow_cli.agent.retrieve import retrieve_operators, retrieve_pipelines
from dataflow_cli.agent.intent import split_intent
request = "remove near-duplicate web pages and mask emails"
split_intent(request)
retrieve_operators(request)
retrieve_pipelines(request)
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'pandas', 'pydantic', 'dataflow_operators', 'numpy', 'jinja2', 'torch', 'sentence_transformers'})
print(json.dumps({"wall": wall, "cpu": cpu, "heavy": heavy}))
"""


def startup(cache: Path) -> dict:
    env = {**os.environ, "DATAFLOW_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, cwd=REPO, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - start
    return result


def latency(items: list[dict], k: int) -> dict:
    from dataflow_cli.agent.intent import split_intent
    from dataflow_cli.agent.retrieve import retrieve_operators, retrieve_pipelines

    retrieve_operators("warm up")
    retrieve_pipelines("warm up")
    times: dict[str, list[float]] = {"split_intent": [], "retrieve_operators": [], "retrieve_pipelines": []}
    cpu0 = time.process_time()
    for item in items:
        request = item["request"]
        for name, call in (
            ("split_intent", lambda r=request: split_intent(r)),
            ("retrieve_operators", lambda r=request: retrieve_operators(r, k=k)),
            ("retrieve_pipelines", lambda r=request: retrieve_pipelines(r)),
        ):
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
    cpu = time.process_time() - cpu0
    report = {
        name: {
            "mean_ms": 1000 * statistics.mean(values),
            "p95_ms": 1000 * sorted(values)[int(0.95 * (len(values) - 1))],
        }
        for name, values in times.items()
    }
    report["cpu_ms_per_request"] = 1000 * cpu / len(items)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--misses", action="store_true", help="list every miss")
    parser.add_argument("--no-startup", action="store_true", help="skip the cold/warm subprocess timings")
    args = parser.parse_args()

    items = load_set(args.set)
    result = evaluate(items, args.k)
    print(f"labelled set: {result['requests']} requests, {result['needed_operators']} needed operators")
    print(
        f"operator recall@{args.k} (request + sub-goal queries): {result['operator_recall']:.3f}"
        f"  (mean candidates {result['mean_candidates']:.1f}; whole request only:"
        f" {result['operator_recall_whole_request']:.3f})"
    )
    print(
        f"ready-pipeline top-1 accuracy: {result['pipeline_top1']:.3f}"
        f"  (labelled requests, no threshold: {result['pipeline_top1_labelled_no_threshold']:.3f})"
    )
    if args.misses:
        for miss in result["operator_misses"]:
            print(f"  miss op  {miss['operator']:<36} {miss['request'][:70]!r} -> {miss['candidates']}")
        for miss in result["pipeline_misses"]:
            print(f"  miss pipe {miss['expected']} got {miss['got']} {miss['request'][:70]!r} {miss['top']}")

    if not args.no_startup:
        with tempfile.TemporaryDirectory() as tmp:
            cold = startup(Path(tmp))
            warm = startup(Path(tmp))
        for label, run in (("cold (catalogue described)", cold), ("warm (cached catalogue)", warm)):
            print(
                f"first retrieval, {label}: {run['wall']:.3f} s wall, {run['cpu']:.3f} s CPU"
                f" (process {run['process_wall']:.3f} s); heavy modules imported: {run['heavy'] or 'none'}"
            )
    lat = latency(items, args.k)
    for name in ("split_intent", "retrieve_operators", "retrieve_pipelines"):
        print(f"{name}: mean {lat[name]['mean_ms']:.2f} ms, p95 {lat[name]['p95_ms']:.2f} ms per request")
    print(f"CPU per request (all three): {lat['cpu_ms_per_request']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
