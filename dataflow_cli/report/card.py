"""The data card: `<stem>.card.md` and `<stem>.card.json` beside a run's output.

What the dataset is, how it was made (stages with operator versions, params, models, prompt
hashes, seeds; sha256 of every input file), what was measured (the numbers of `stats.json`),
and what a user should not assume. The Markdown starts with the YAML metadata block of a
Hugging Face dataset card (`configs`/`data_files` pointing at the output file beside it,
`size_categories`, `pretty_name`, `tags`), so it can be uploaded as the dataset repo's README
as is. Only keys dataflow knows are written: no guessed license or task category.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataflow_cli.report.model import pass_rates, score_profiles

if TYPE_CHECKING:
    from dataflow_cli.spec.model import Spec, Stage

FORMAT = "dataflow.card/1"
HASH_CACHE = "input_hashes.json"  # in the run directory: a rerun does not rehash unchanged inputs
SMALL_SAMPLE = 1_000  # below this many rows, rates and score shapes are rough
CHUNK = 1 << 20

# Checks a user might assume were made; the card says which this pipeline did not make
# (matched against operator names).
CHECKS = (
    (("dedup",), "deduplication", "rows may repeat"),
    (("pii",), "personal data (PII) detection or removal", "rows may contain names, e-mails, phone numbers"),
    (("decontam",), "benchmark decontamination", "rows may overlap evaluation benchmarks"),
    (
        ("flagged_words", "toxic", "safety"),
        "toxicity or safety filtering",
        "rows may contain offensive or unsafe text",
    ),
    (("language",), "language identification", "rows may be in any language"),
)

SIZE_CATEGORIES = (
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
)  # fmt: skip


def card_paths(output: Path) -> tuple[Path, Path]:
    return output.with_name(f"{output.stem}.card.md"), output.with_name(f"{output.stem}.card.json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path)


def input_hashes(paths: list[Path], run_dir: Path | None, base: Path | None = None) -> list[dict[str, Any]]:
    """sha256 of each input file, streamed; cached in the run directory by (path, size, mtime)
    so that resuming a run over a large input does not read it all again."""
    cache_file = run_dir / HASH_CACHE if run_dir is not None else None
    cache: dict[str, Any] = {}
    if cache_file is not None and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}
    out, fresh = [], {}
    for path in paths:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        digest = cache.get(key) or sha256_file(path)
        fresh[key] = digest
        shown = _relative(path, base) if base is not None else str(path)
        out.append({"path": shown, "bytes": stat.st_size, "sha256": digest})
    if cache_file is not None and fresh != cache:
        from dataflow_cli.io.writers import atomic_write_text

        atomic_write_text(cache_file, json.dumps(fresh, indent=1) + "\n")
    return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion: honest for small n and rates near 0 or 1."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


# --------------------------------------------------------------------------- the model


def build_card(spec: Spec, stats: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The card of a finished run that wrote `spec.output_path`."""
    from dataflow_cli import __version__
    from dataflow_cli.engine.fingerprint import fingerprints

    output = spec.output_path
    base = spec.file.resolve().parent  # paths in the card are relative to the spec: no home dirs
    description = spec.resolved.get("description") if isinstance(spec.resolved, dict) else None
    stages = stats["stages"]
    provenance_stages = [
        _stage_provenance(stage, fp) for stage, fp in zip(spec.stages, fingerprints(spec), strict=True)
    ]
    written, read = stats["rows_written"], stats["rows_read"]
    total_in = read + stats.get("rows_added_by_fanout", 0)
    rates = pass_rates(stages)
    for rate in rates:
        rate["ci95"] = wilson(rate["true"], rate["known"])
    card = {
        "format": FORMAT,
        "dataset": {
            "name": spec.name,
            "description": " ".join(description.split()) if isinstance(description, str) else None,
            "file": output.name,
            "format": output.suffix.lstrip(".").lower(),
            "rows": written,
            "bytes": output.stat().st_size,
            "sha256": sha256_file(output),
            "columns": _columns(output),
            "rejects": {
                "path": _relative(Path(stats["rejects"]), base) if stats.get("rejects") else None,
                "rows": stats["rows_rejected"],
            },
        },
        "provenance": {
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "dataflow_version": __version__,
            "spec": _relative(spec.file, base),
            "spec_sha256": sha256_file(spec.file) if spec.file.is_file() else None,
            "run_dir": _relative(run_dir, base) if run_dir is not None else None,
            "inputs": input_hashes(spec.input_paths, run_dir, base),
            "input_limit": spec.limit,
            "batch_size": spec.batch_size,
            "stages": provenance_stages,
        },
        "statistics": {
            "rows_read": read,
            "rows_added_by_fanout": stats.get("rows_added_by_fanout", 0),
            "rows_written": written,
            "rows_rejected": stats["rows_rejected"],
            "keep_ratio": round(written / total_in, 4) if total_in else None,
            "keep_ratio_ci95": wilson(written, total_in),
            "stages": [
                {
                    "name": s["name"],
                    "op": s["op"],
                    "kind": s["kind"],
                    "rows_in": s["rows_in"],
                    "rows_out": s["rows_out"],
                    "rows_dropped": s["rows_dropped"],
                    "dropped_by_reason": s.get("dropped_by_reason", {}),
                    # A filter's keep rate is its pass rate (verifier filters: how many passed).
                    "keep_ratio": round(s["rows_out"] / s["rows_in"], 4) if s["rows_in"] else None,
                    "keep_ratio_ci95": wilson(s["rows_out"], s["rows_in"]) if s["kind"] == "filter" else None,
                }
                for s in stages
            ],
            "scores": score_profiles(stages),
            "pass_rates": rates,
            "profiles_available": any("columns" in s for s in stages),
            "llm": _llm_totals(stages),
            "gates": stats.get("gates") or [],
            "stopped_by": stats.get("stopped_by"),
        },
    }
    card["limitations"] = _limitations(spec, card)
    card["hf_metadata"] = _hf_metadata(card)
    return card


def _columns(output: Path) -> list[dict[str, str]]:
    from dataflow_cli.io.inputs import read_schema

    return [{"name": name, "type": type_name} for name, type_name in read_schema([output]).items()]


def _stage_provenance(stage: Stage, fingerprint: str) -> dict[str, Any]:
    op = stage.operator
    params = stage.params
    entry: dict[str, Any] = {
        "name": stage.name,
        "op": stage.op_name,
        "kind": stage.kind,
        "operator_version": op.version,
        "package": _package(stage.op_name),
        "params": params,
        "inputs": stage.inputs,
        "outputs": stage.outputs if stage.kind != "refine" else {},
        "fingerprint": fingerprint,
    }
    if "seed" in params and params["seed"] is not None:
        entry["seed"] = params["seed"]
    if op.uses_llm:
        backend = stage.backend or {}
        model = backend.get("model") or (
            Path(backend["model_path"]).name if backend.get("model_path") else None
        )
        entry["backend"] = {
            "name": stage.backend_name,
            "provider": backend.get("provider"),
            "model": model or f"{backend.get('provider')} default model",
        }
        template = getattr(op, "template_text", None)
        text = template() if callable(template) else stage.prompt_text
        if text:
            entry["prompt_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        system = params.get("system")
        if isinstance(system, str) and system:
            entry["system_prompt_sha256"] = hashlib.sha256(system.encode("utf-8")).hexdigest()
    elif stage.prompt_text:
        entry["prompt_sha256"] = hashlib.sha256(stage.prompt_text.encode("utf-8")).hexdigest()
    return entry


def _package(op_name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    from dataflow_cli import registry

    entry = registry.entries().get(op_name)
    if entry is None:
        return None
    try:
        return f"{entry.distribution} {version(entry.distribution)}"
    except PackageNotFoundError:
        return entry.distribution


def _llm_totals(stages: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("requests", "cache_hits", "calls", "errors", "prompt_tokens", "completion_tokens", "cost")
    by_stage = [{"stage": s["name"], **{k: s["llm"].get(k, 0) for k in keys}} for s in stages if s.get("llm")]
    total = {k: sum(row[k] for row in by_stage) for k in keys}
    total["cost"] = round(total["cost"], 6)
    return {"by_stage": by_stage, "total": total}


def _limitations(spec: Spec, card: dict[str, Any]) -> list[str]:
    out: list[str] = []
    stats, prov = card["statistics"], card["provenance"]
    llm_stages = [s for s in prov["stages"] if "backend" in s]
    if llm_stages:
        models = sorted({f"{s['backend']['provider']}:{s['backend']['model']}" for s in llm_stages})
        names = ", ".join(f"`{s['name']}` ({s['kind']})" for s in llm_stages)
        out.append(
            f"Model-made content: stages {names} used {', '.join(f'`{m}`' for m in models)}. "
            "Generated text and model judgements can be wrong, biased or made up; a model's "
            "score is its opinion, not a check against ground truth."
        )
        if any(s["backend"]["provider"] == "fake" for s in llm_stages):
            out.append(
                "The `fake` test backend answered the model calls: the texts are placeholders, "
                "not model output. Do not train on this dataset."
            )
    filters = [s for s in stats["stages"] if s["kind"] == "filter" or s["rows_dropped"]]
    if filters and stats["rows_rejected"]:
        dropped = ", ".join(f"`{s['name']}` {s['rows_dropped']:,}" for s in filters if s["rows_dropped"])
        out.append(
            f"Filtered, not a random sample: {stats['rows_rejected']:,} of "
            f"{stats['rows_read'] + stats['rows_added_by_fanout']:,} rows were removed ({dropped}); "
            "the filters' biases (length, language, score thresholds) shape what is left. "
            "The removed rows and their reasons are in the rejects file."
        )
    ops = [s["op"] for s in prov["stages"]]
    missing = [(what, risk) for keys, what, risk in CHECKS if not any(k in op for op in ops for k in keys)]
    if missing:
        out.append(
            "Not checked by this pipeline: " + "; ".join(f"{what} ({risk})" for what, risk in missing) + "."
        )
    if stats["rows_written"] < SMALL_SAMPLE:
        out.append(
            f"Small dataset ({stats['rows_written']:,} rows): the rates and score distributions "
            "above are rough; the 95% intervals given with the rates show how rough."
        )
    if prov["input_limit"]:
        out.append(
            f"Only the first {prov['input_limit']:,} input rows were processed (`input.limit`/`--limit`)."
        )
    if stats["stopped_by"]:
        stop = stats["stopped_by"]
        out.append(
            f"Incomplete: the run was stopped by the budget cap `{stop.get('cap')}` "
            f"(limit {stop.get('limit')}); not every input row was processed."
        )
    failed = [g for g in stats["gates"] if not g.get("passed")]
    if failed:
        out.append(
            "Quality gates that failed (with `on_fail: warn`): "
            + "; ".join(f"`{g.get('stage')}` {g.get('check')} observed {g.get('observed')}, "
                        f"expected {g.get('expected')}" for g in failed)
            + "."
        )  # fmt: skip
    if not stats["profiles_available"]:
        out.append("This run's stats have no column profiles: score distributions are not reported.")
    out.append(
        "License and intended use are not set by dataflow: they follow from the input data's and "
        "the models' terms, which the publisher must check and add to this card."
    )
    return out


def _hf_metadata(card: dict[str, Any]) -> dict[str, Any]:
    rows = card["dataset"]["rows"]
    size = next((label for limit, label in SIZE_CATEGORIES if rows < limit), "n>1B")
    tags = ["dataflow"]
    if any("backend" in s for s in card["provenance"]["stages"]):
        tags.append("synthetic")
    return {
        "pretty_name": card["dataset"]["name"],
        "size_categories": [size],
        "tags": tags,
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": card["dataset"]["file"]}]}
        ],
    }


# --------------------------------------------------------------------------- rendering


def render_markdown(card: dict[str, Any]) -> str:
    import yaml

    ds, prov, stats = card["dataset"], card["provenance"], card["statistics"]
    front = yaml.safe_dump(card["hf_metadata"], sort_keys=False, allow_unicode=True)
    lines = [f"---\n{front}---", "", f"# {_md(ds['name'])}", ""]
    if ds["description"]:
        lines += [_md(ds["description"]), ""]
    lines += [
        f"Made with dataflow {prov['dataflow_version']} on {prov['created_at']}. "
        f"{_code(ds['file'])}: {ds['rows']:,} rows, {ds['bytes']:,} bytes, sha256 `{ds['sha256']}`.",
        "",
        "## Columns",
        "",
        "| column | type |",
        "|---|---|",
        *[f"| {_cell(c['name'])} | {_cell(c['type'])} |" for c in ds["columns"]],
        "",
        "## How it was made",
        "",
        f"Spec {_code(prov['spec'])} (sha256 `{prov['spec_sha256']}`), batch size {prov['batch_size']:,}"
        + (f", first {prov['input_limit']:,} input rows only" if prov["input_limit"] else "")
        + ".",
        "",
        "Inputs:",
        "",
        *[f"- {_code(i['path'])}: {i['bytes']:,} bytes, sha256 `{i['sha256']}`" for i in prov["inputs"]],
        "",
        "Stages, in order:",
        "",
    ]
    for n, s in enumerate(prov["stages"], 1):
        bits = [f"`{s['op']}` v{s['operator_version']}" + (f" ({_md(s['package'])})" if s["package"] else "")]
        if "backend" in s:
            b = s["backend"]
            bits.append(f"model {_code(b['model'])} via {_code(b['provider'])}")
        if "prompt_sha256" in s:
            bits.append(f"prompt sha256 `{s['prompt_sha256'][:16]}…`")
        if "seed" in s:
            bits.append(f"seed {s['seed']}")
        lines.append(f"{n}. **{_md(s['name'])}** ({s['kind']}): " + ", ".join(bits))
        params = {k: v for k, v in s["params"].items() if v not in (None, [], {})}
        if params:
            lines.append(f"   params: {_code(json.dumps(params, ensure_ascii=False, sort_keys=True))}")
    lines += ["", "Full prompt hashes, params and fingerprints: the `.card.json` beside this file.", ""]
    lines += _stats_markdown(stats)
    lines += ["## Limitations", "", *[f"- {_md(text)}" for text in card["limitations"]], ""]
    return "\n".join(lines)


def _stats_markdown(stats: dict[str, Any]) -> list[str]:
    ci = stats["keep_ratio_ci95"]
    keep = (
        f"{stats['keep_ratio'] * 100:.1f}% kept (95% interval {ci[0] * 100:.1f}–{ci[1] * 100:.1f}%)"
        if stats["keep_ratio"] is not None and ci
        else ""
    )
    lines = [
        "## Measured",
        "",
        f"Read {stats['rows_read']:,} rows"
        + (f", {stats['rows_added_by_fanout']:,} added by fan-out" if stats["rows_added_by_fanout"] else "")
        + f"; wrote {stats['rows_written']:,}; rejected {stats['rows_rejected']:,}. {keep}",
        "",
        "| stage | op | rows in | rows out | dropped | kept (95% interval) | top drop reasons |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for s in stats["stages"]:
        reasons = "; ".join(f"{r}: {c:,}" for r, c in list(s["dropped_by_reason"].items())[:3])
        kept = "" if s.get("keep_ratio") is None else f"{s['keep_ratio'] * 100:.1f}%"
        if s.get("keep_ratio_ci95"):
            low, high = s["keep_ratio_ci95"]
            kept += f" ({low * 100:.1f}–{high * 100:.1f}%)"
        lines.append(
            f"| {_cell(s['name'])} | {_cell(s['op'])} | {s['rows_in']:,} | {s['rows_out']:,} | "
            f"{s['rows_dropped']:,} | {kept} | {_cell(reasons)} |"
        )
    lines.append("")
    if stats["scores"]:
        lines += [
            "Score distributions (rows leaving the stage):",
            "",
            "| column | stage | n | nulls | mean | p05 | p50 | p95 |",
        ]
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for p in stats["scores"]:
            q = p.get("quantiles") or {}
            lines.append(
                f"| {_cell(p['column'])} | {_cell(p['stage'])} | {p.get('count', 0):,} | {p.get('nulls', 0):,} | "
                f"{_f(p.get('mean'))} | {_f(q.get('p05'))} | {_f(q.get('p50'))} | {_f(q.get('p95'))} |"
            )
        lines.append("")
    if stats["pass_rates"]:
        lines += [
            "Verifier pass rates:",
            "",
            "| column | stage | passed | of | rate (95% interval) |",
            "|---|---|---:|---:|---|",
        ]
        for r in stats["pass_rates"]:
            rate = "–" if r["rate"] is None else f"{r['rate'] * 100:.1f}%"
            if r.get("ci95"):
                rate += f" ({r['ci95'][0] * 100:.1f}–{r['ci95'][1] * 100:.1f}%)"
            lines.append(
                f"| {_cell(r['column'])} | {_cell(r['stage'])} | {r['true']:,} | {r['known']:,} | {rate} |"
            )
        lines.append("")
    llm = stats["llm"]
    if llm["by_stage"]:
        lines += [
            "Model usage:",
            "",
            "| stage | requests | cache hits | errors | prompt tokens | completion tokens | cost (USD) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in [*llm["by_stage"], {"stage": "**total**", **llm["total"]}]:
            lines.append(
                f"| {row['stage']} | {row['requests']:,} | {row['cache_hits']:,} | {row['errors']:,} | "
                f"{row['prompt_tokens']:,} | {row['completion_tokens']:,} | {row['cost']:.4f} |"
            )
        lines.append("")
    if stats["gates"]:
        lines += [
            "Quality gates:",
            "",
            "| stage | check | observed | expected | result |",
            "|---|---|---|---|---|",
        ]
        for g in stats["gates"]:
            result = "passed" if g.get("passed") else f"failed ({g.get('on_fail')})"
            lines.append(
                f"| {_cell(g.get('stage'))} | {_cell(g.get('check'))} | {_cell(g.get('observed'))} | "
                f"{_cell(g.get('expected'))} | {result} |"
            )
        lines.append("")
    return lines


def _f(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "–"


def _code(text: Any) -> str:
    """A Markdown code span that no backtick in `text` can close early (CommonMark: the fence is
    a run of backticks longer than any run inside)."""
    import re

    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(m) for m in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md(text: Any) -> str:
    """Text from the spec or data in Markdown: no raw HTML (Hub READMEs render it)."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: Any) -> str:
    return _md("" if text is None else text).replace("|", "\\|").replace("\n", " ")


def write_card(spec: Spec, stats: dict[str, Any], run_dir: Path | None = None) -> tuple[Path, Path]:
    from dataflow_cli.io.writers import atomic_write_text
    from dataflow_cli.redact import redact_json

    card = redact_json(build_card(spec, stats, run_dir))
    md_path, json_path = card_paths(spec.output_path)
    atomic_write_text(json_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(md_path, render_markdown(card))
    return md_path, json_path
