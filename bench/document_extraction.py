"""Document extraction and QA support-check figures.

    python bench/document_extraction.py [--copies 40] [--workers 1 2]

1. Quality on the sample PDF of pipelines/knowledge_qa (written by scripts/make_sample_documents.py
   from known text): character-level recall of each page's source text after whitespace
   normalisation (goal >= 0.98 per page with a text layer), reading order on the two-column page
   (every paragraph of the left column before the right column's), and the image-only page
   (goal: left out, with its reason) and the scanned PDF (goal: no text, with its reason).
2. Speed: `--copies` copies of the 5-page PDF read through the documents input
   (`read_documents`: one worker process per PDF at a time, `--workers` in parallel), in pages/s.
3. The support check of `qa_support_filter` on the labelled set of
   tests/unit/operators/knowledge/support_cases.py (goal: accuracy >= 0.97).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "operators")]

from scripts.make_sample_documents import GUIDE, PAGES, SCAN, char_recall, expected_pages  # noqa: E402

DOCS = REPO / "pipelines" / "knowledge_qa" / "docs"


def quality() -> None:
    from dataflow_cli.io.documents import read_documents

    guide, scan = read_documents([DOCS / GUIDE, DOCS / SCAN])
    spans = {span["page"]: (span["start"], span["end"]) for span in guide["pages"]}
    print(f"{GUIDE}: {guide['page_count']} pages")
    for number, expected in enumerate(expected_pages(), start=1):
        if expected is None:
            reason = next(s["reason"] for s in guide["skipped_pages"] if s["page"] == number)
            print(f"  page {number}: image only -> left out: {reason}")
            continue
        start, end = spans[number]
        print(f"  page {number}: recall {char_recall(expected, guide['text'][start:end]):.4f}")
    start, end = spans[3]
    page = guide["text"][start:end]
    left, right = PAGES[2][1][1]  # type: ignore[misc]
    paragraphs = [str(p) for kind, p in [*left, *right] if kind == "para"]
    positions = [page.find(p[:60]) for p in paragraphs]
    in_order = -1 not in positions and positions == sorted(positions)
    print(f"  page 3 (two columns): {len(paragraphs)} paragraphs in reading order: {in_order}")
    print(f"{SCAN}: text {scan['text']!r}, extract_error {scan['extract_error']!r}")


def speed(copies: int, workers: list[int]) -> None:
    from dataflow_cli.io import documents

    folder = Path(tempfile.mkdtemp(prefix="dataflow-bench-docs-"))
    try:
        paths = []
        for i in range(copies):
            path = folder / f"guide-{i:04d}.pdf"
            shutil.copyfile(DOCS / GUIDE, path)
            paths.append(path)
        pages = copies * len(PAGES)
        for count in workers:
            os.environ["DATAFLOW_DOCUMENT_WORKERS"] = str(count)
            documents._pool().run([str(paths[0])])  # start the workers (pypdf import) outside the timing
            started = time.perf_counter()
            rows = documents.read_documents(paths)
            seconds = time.perf_counter() - started
            assert all(row["extract_error"] is None for row in rows)
            print(
                f"{count} worker(s): {copies} PDFs, {pages} pages in {seconds:.2f} s -> "
                f"{pages / seconds:.1f} pages/s ({copies / seconds:.1f} files/s)"
            )
    finally:
        shutil.rmtree(folder)


def support_accuracy() -> None:
    from dataflow_operators.knowledge.qa_support import QaSupportFilter

    from tests.unit.operators.knowledge.support_cases import CASES, CHUNKS

    op = QaSupportFilter()
    right = 0
    for key, question, answer, quote, supported, _kind in CASES:
        right += (op.check(question, answer, quote, CHUNKS[key])[0] is None) == supported
    planted = sum(not case[4] for case in CASES)
    print(
        f"support check: {right}/{len(CASES)} right = accuracy {right / len(CASES):.3f} "
        f"({planted} planted unsupported, {len(CASES) - planted} supported)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=40, help="copies of the 5-page PDF to read (default 40)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    quality()
    speed(args.copies, args.workers)
    support_accuracy()


if __name__ == "__main__":
    main()
