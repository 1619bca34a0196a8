"""Copy a ready pipeline (spec + sample data + prompts) into a user's directory."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean
from dataflow_cli.resources import pipelines_dir

DEFAULT_TEMPLATE = "text_clean"
SPEC_NAME = "pipeline.yaml"


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    description: str


def templates() -> list[Template]:
    found = []
    for spec in sorted(pipelines_dir().glob(f"*/{SPEC_NAME}")):
        try:
            description = (yaml.safe_load(spec.read_text(encoding="utf-8")) or {}).get("description", "")
        except yaml.YAMLError:
            description = ""
        found.append(Template(spec.parent.name, spec.parent, " ".join(str(description).split())))
    return found


def _files(root: Path) -> list[Path]:
    skip = {"__pycache__", ".dataflow", "out"}
    return sorted(
        p for p in root.rglob("*") if p.is_file() and not skip.intersection(p.relative_to(root).parts)
    )


def scaffold(directory: Path, name: str, *, force: bool = False) -> list[Path]:
    """Copy template `name` into `directory`, with the editor schema of the installed operators
    beside the spec and the spec pointing at it; refuse to overwrite anything unless `force`."""
    from dataflow_cli.spec.schema import PROJECT_SCHEMA_FILE, full_schema, point_modeline, schema_text

    by_name = {t.name: t for t in templates()}
    if name not in by_name:
        raise SpecError(
            f"no ready pipeline named `{name}`{did_you_mean(name, by_name)}",
            hint="see `dataflow init --list-templates`",
        )
    source = by_name[name].path
    files = _files(source)
    targets = [directory / f.relative_to(source) for f in files]
    schema_file = directory / PROJECT_SCHEMA_FILE
    existing = [t for t in [*targets, schema_file] if t.exists()]
    if existing and not force:
        shown = ", ".join(f"`{p}`" for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise DataflowError(
            f"{len(existing)} file(s) already exist: {shown}",
            hint="pass --force to overwrite, or choose another directory",
        )
    # The template's spec points at the shipped schema by a path that does not exist in the
    # new project: an editor would report "unable to load schema". The project gets its own,
    # which also knows the operators of installed plugins.
    schema, _ = full_schema()
    try:
        for src, dst in zip(files, targets, strict=True):
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.name == SPEC_NAME and dst.parent == directory:
                text = point_modeline(src.read_text(encoding="utf-8"), PROJECT_SCHEMA_FILE)
                dst.write_text(text, encoding="utf-8")
            else:
                shutil.copyfile(src, dst)
        schema_file.write_text(schema_text(schema), encoding="utf-8")
    except OSError as exc:
        raise DataflowError(f"cannot write into `{directory}`: {exc.strerror}") from None
    return [*targets, schema_file]
