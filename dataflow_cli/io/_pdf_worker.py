"""A worker process that extracts the text of PDF files (`python -m dataflow_cli.io._pdf_worker`).

PDFs are untrusted input: a crafted file can make a parser loop for a long time or inflate a
stream into gigabytes. Each file is therefore read in a worker process whose address space is
capped (DATAFLOW_PDF_MEMORY_MB) and which the parent kills when the file's time is up.

Protocol (JSON lines): the worker prints `{"ready": true}` once pypdf is imported, then answers
each request `{"path": "..."}` with `{"pages": [[text | null, reason | null], ...]}` or
`{"error": "short reason: detail"}` for a file that cannot be read as a PDF at all.
"""

from __future__ import annotations

import json
import os
import sys


def _limit_memory() -> None:
    megabytes = int(os.environ.get("DATAFLOW_PDF_MEMORY_MB", "0") or 0)
    if megabytes > 0:
        import resource

        limit = megabytes << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def extract(path: str) -> dict:
    """The answer for one file (also used in-process by tests and the benchmark)."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    from dataflow_cli.io.pdf_text import extract_pages

    # pypdf logs every recoverable oddity of a file; the row's reason says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    return {"error": "encrypted PDF: a password is needed"}
            except Exception as exc:  # noqa: BLE001 - unsupported encryption schemes raise various types
                return {"error": f"encrypted PDF: {_short(exc)}"}
        return {"pages": extract_pages(reader)}
    except MemoryError:
        return {"error": "PDF too large: extraction exceeded the memory limit"}
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        return {"error": f"not a readable PDF: {_short(exc)}"}


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def main() -> None:
    _limit_memory()
    import pypdf  # noqa: F401 - imported before "ready" so the first file's time is its own

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = extract(request["path"])
        except MemoryError:
            answer = {"error": "PDF too large: extraction exceeded the memory limit"}
        except OSError as exc:
            answer = {"error": f"cannot read file: {exc.strerror or exc}"}
        except Exception as exc:  # noqa: BLE001 - a hostile file must cost one row, not the run
            answer = {"error": f"not a readable PDF: {type(exc).__name__}: {_short(exc)}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
