"""Live per-stage progress and the end-of-run summary, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

from dataflow_cli.engine.executor import Progress
from dataflow_cli.engine.stats import RunStats


def _stage_table(stats: RunStats, title: str, final: bool) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("stage", no_wrap=True)
    table.add_column("op", style="dim", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("rows in", justify="right", no_wrap=True)
    table.add_column("rows out", justify="right", no_wrap=True)
    table.add_column("dropped (top reasons)", min_width=24, max_width=60, overflow="fold")
    table.add_column("rows/s" if not final else "seconds", justify="right", no_wrap=True)
    table.add_column("reused", justify="right", style="dim", no_wrap=True)
    if any(s.llm for s in stats.stages):
        table.add_column("llm req/cached/retried/failed, tokens", no_wrap=True)
    for s in stats.stages:
        reasons = ", ".join(
            f"{_short(reason)}: {count:,}" for reason, count in s.dropped_by_reason.most_common(3)
        )
        if len(s.dropped_by_reason) > 3:
            reasons += f", +{len(s.dropped_by_reason) - 3} more"
        if final:
            speed = f"{s.seconds:.2f}"
        else:
            speed = f"{s.rows_in / s.seconds:,.0f}" if s.seconds > 0 else "-"
        reused = f"{s.batches_reused}/{s.batches_reused + s.batches_computed}" if s.batches_reused else ""
        cells = [s.name, s.op, f"{s.rows_in:,}", f"{s.rows_out:,}", reasons, speed, reused]
        if any(x.llm for x in stats.stages):
            cells.append(_llm_cell(s.llm) if s.llm else "")
        table.add_row(*cells)
    return table


def _llm_cell(llm: dict) -> str:
    tokens = llm["prompt_tokens"] + llm["completion_tokens"]
    text = f"{llm['requests']:,}/{llm['cache_hits']:,}/{llm['retries']:,}/{llm['errors']:,}, {tokens:,}"
    if llm.get("in_flight"):
        text += f" in flight {llm['in_flight']}"
    if llm.get("cost"):
        text += f" ${llm['cost']:.4f}"
    return text


def _short(reason: str, limit: int = 40) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


class RichProgress(Progress):
    def __init__(self, console: Console):
        self.console = console
        self.live: Live | None = None

    def start(self, stats: RunStats) -> None:
        self.live = Live(
            _stage_table(stats, f"running {stats.name}", False),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self.live.start()

    def phase(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(f"[dim]{text}[/dim]")

    def batch_done(self, stats: RunStats) -> None:
        if self.live is not None:
            title = (
                f"running {stats.name}: {stats.rows_read:,} rows read, {stats.rows_per_second:,.0f} rows/s"
            )
            self.live.update(_stage_table(stats, title, False))

    def finish(self, stats: RunStats) -> None:
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def print_summary(console: Console, stats: RunStats) -> None:
    console.print(_stage_table(stats, f"{stats.name}: summary", True))
    # None: nothing to write there, so no file was written (an empty one could not be loaded).
    output = stats.output or "no output file"
    rejects = stats.rejects or "no rejects file"
    console.print(
        f"read [bold]{stats.rows_read:,}[/bold] rows -> wrote [bold green]{stats.rows_written:,}[/bold green] "
        f"to {output}; rejected [bold]{stats.rows_rejected:,}[/bold] -> {rejects} "
        f"({stats.seconds:.2f} s, {stats.rows_per_second:,.0f} rows/s)",
        soft_wrap=True,
    )
