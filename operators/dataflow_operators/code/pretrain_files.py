"""File-level signals for pre-training code: which files are source code, and their license."""

from __future__ import annotations

import re

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Evaluator, Filter, NoParams, Port, Verdict
from dataflow_operators.code._rules import rule_verdict

SOURCE_EXTENSIONS = sorted(
    "py pyi ipynb js mjs cjs ts tsx jsx java kt kts scala groovy c h cc cpp cxx hpp hh cs go rs rb php "
    "swift m mm sh bash zsh ps1 lua pl pm r jl hs ml mli ex exs erl clj cljs dart sql f f90 f95 vue "
    "svelte zig nim v sv vhd asm s cmake proto".split()
)
EXCLUDED_SUFFIXES = [".min.js", ".min.css", ".pb.go", "_pb2.py", ".g.dart", ".designer.cs"]


class CodeExtensionFilter(Filter):
    """Keep files whose extension is a source-code one; drop data, config and generated files.

    `path` is matched case-insensitively: first against `excluded_suffixes` (minified bundles,
    protobuf and other generated sources), then its last extension against `extensions`.
    Reasons: "excluded suffix `.min.js`", "extension `.json` not allowed", "no extension".

    Inputs:
        path: the file's path or name.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        extensions: allowed extensions, without the dot (default: common programming languages).
        excluded_suffixes: name endings dropped even with an allowed extension.
    """

    name = "code_extension_filter"
    inputs = {"path": Port("the file's path or name")}

    class Params(NoParams):
        extensions: list[str] = Field(
            default_factory=lambda: list(SOURCE_EXTENSIONS),
            min_length=1,
            description="Allowed extensions, no dot.",
        )
        excluded_suffixes: list[str] = Field(
            default_factory=lambda: list(EXCLUDED_SUFFIXES), description="Name endings always dropped."
        )

    def filter(self, batch: Batch) -> Verdict:
        allowed = {e.lower().lstrip(".") for e in self.params.extensions}
        excluded = [s.lower() for s in self.params.excluded_suffixes]

        def check(path: str) -> tuple[str, str] | None:
            name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
            suffix = next((s for s in excluded if name.endswith(s)), None)
            if suffix:
                return f"excluded suffix `{suffix}`", path
            if "." not in name.strip("."):
                return "no extension", path
            extension = name.rsplit(".", 1)[1]
            return None if extension in allowed else (f"extension `.{extension}` not allowed", path)

        return rule_verdict(batch.values("path"), check, name="path")


# Phrases of the common license texts, most specific first; each names an SPDX identifier.
_LICENSES = [
    (re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE", re.I), "AGPL-3.0"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE|GNU LIBRARY GENERAL PUBLIC", re.I), "LGPL"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE.{0,200}?version 3", re.I | re.S), "GPL-3.0"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE.{0,200}?version 2", re.I | re.S), "GPL-2.0"),
    (re.compile(r"GNU GENERAL PUBLIC LICENSE", re.I), "GPL"),
    (re.compile(r"Apache License,?\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"Mozilla Public License,?\s+(?:v\.?\s*|version\s+)2\.0", re.I), "MPL-2.0"),
    (re.compile(r"Permission is hereby granted, free of charge", re.I), "MIT"),
    (
        re.compile(
            r"Redistribution and use in source and binary forms.{0,2000}?Neither the name", re.I | re.S
        ),
        "BSD-3-Clause",
    ),
    (re.compile(r"Redistribution and use in source and binary forms", re.I), "BSD-2-Clause"),
    (re.compile(r"free and unencumbered software released into the public domain", re.I), "Unlicense"),
    (re.compile(r"Eclipse Public License", re.I), "EPL"),
]
_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+()\- ]+?)\s*(?:\*/|-->|$)", re.M)
_RESERVED = re.compile(r"all rights reserved", re.I)


def detect_license(text: str, head_lines: int) -> str | None:
    head = "\n".join(text.splitlines()[:head_lines])
    if match := _SPDX.search(head):
        return match.group(1).strip()
    for pattern, name in _LICENSES:
        if pattern.search(head):
            return name
    return "all rights reserved" if _RESERVED.search(head) else None


class CodeLicenseEvaluator(Evaluator):
    """Detect the license a source file's header declares, as a signal (nothing is dropped).

    An `SPDX-License-Identifier:` line wins; otherwise phrases of the common license texts in the
    first `head_lines` lines give an SPDX-style name (MIT, Apache-2.0, GPL-2.0, GPL-3.0, LGPL,
    AGPL-3.0, BSD-2-Clause, BSD-3-Clause, MPL-2.0, Unlicense, EPL); a bare "All rights reserved"
    gives "all rights reserved"; no header gives null. Filter on it with `regex_filter` (e.g. to
    keep only permissive licenses) or keep it for attribution.

    Inputs:
        text: the file's content.
    Outputs:
        license: the license named in the header (null if none).
    Params:
        head_lines: how many leading lines are searched.
    """

    name = "code_license_evaluator"
    inputs = {"text": Port("the file's content")}
    outputs = {"license": Port("the license named in the header (null if none)")}

    class Params(NoParams):
        head_lines: int = Field(40, ge=1, description="How many leading lines are searched.")

    def evaluate(self, batch: Batch) -> dict:
        n = self.params.head_lines
        found = [detect_license(t, n) if t is not None else None for t in batch.values("text")]
        return {"license": pa.array(found, pa.string())}
