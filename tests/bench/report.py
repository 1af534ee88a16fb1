"""The results table: every figure, ours beside naive, checked against the targets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tests.bench.burst import BurstConfig, BurstSide
from tests.bench.cold import BARE, HANDLER
from tests.bench.memory import FC_MINIMUM_MIB


@dataclass(frozen=True)
class Row:
    """One line of the table; ``limit`` is the target for ours (``None``: reported, no target)."""

    section: str
    metric: str
    ours: float | None
    naive: float | None = None
    limit: float | None = None
    unit: str = ""

    @property
    def verdict(self) -> str:
        if self.limit is None or self.ours is None:
            return ""
        if self.ours <= self.limit:
            return "met"
        over = self.ours - self.limit
        relative = f" ({over / self.limit:+.0%})" if self.limit else ""
        return f"MISSED by {_number(over)}{self.unit}{relative}"

    def cells(self) -> list[str]:
        target = "" if self.limit is None else f"≤ {_number(self.limit)}{self.unit}"
        return [self.section, self.metric, _cell(self.ours, self.unit), _cell(self.naive, self.unit), target]


def burst_rows(config: BurstConfig, sides: dict[str, BurstSide]) -> list[Row]:
    ours, naive = sides["ours"], sides["naive"]
    section = (
        f"burst N={config.n} T={_number(config.task_seconds)}s Q={_number(config.qps)}/s "
        f"C={config.concurrency} tick={_number(config.tick_every)}s"
    )
    bound = config.lower_bound
    return [
        Row(section, "lower bound", bound, bound, unit=" s"),
        Row(section, "makespan", ours.makespan, naive.makespan, unit=" s"),
        Row(section, "makespan / lower bound", ours.makespan / bound, naive.makespan / bound, 1.10),
        Row(section, "jobs lost (not DONE)", ours.lost, naive.lost, 0),
        Row(
            section,
            "submits accepted per job",
            ours.per_job("submits_accepted"),
            naive.per_job("submits_accepted"),
            1.02,
        ),
        Row(
            section,
            "429s per job",
            ours.per_job("submits_throttled"),
            naive.per_job("submits_throttled"),
            0.05,
        ),
        Row(section, "queries per job", ours.per_job("queries"), naive.per_job("queries")),
    ]


def idle_rows(task_seconds: float, idle: dict[str, dict[str, Any]]) -> list[Row]:
    section = f"idle T={_number(task_seconds)}s (median of {len(idle['ours']['samples'])})"
    return [
        Row(
            section,
            "upload→output minus task time",
            idle["ours"]["overhead_seconds"],
            idle["naive"]["overhead_seconds"],
            2.0,
            " s",
        ),
        Row(section, "queries per job", idle["ours"]["queries_per_job"], idle["naive"]["queries_per_job"]),
    ]


def cold_rows(cold: dict[str, dict[str, Any]]) -> list[Row]:
    section = f"cold start (median of {cold[BARE]['runs']})"
    bare = cold[BARE]["wall_ms"]
    rows = []
    for name, figures in cold.items():
        rows.append(Row(section, f"{name}: process wall time", figures["wall_ms"], unit=" ms"))
        if figures["call_ms"] is not None:
            rows.append(Row(section, f"{name}: the call itself", figures["call_ms"], unit=" ms"))
        if name != BARE:
            limit = 1.15 if name == HANDLER else None
            rows.append(
                Row(section, f"{name}: wall time / bare import", figures["wall_ms"] / bare, limit=limit)
            )
        rows.append(Row(section, f"{name}: peak RSS", figures["peak_rss_mib"], unit=" MiB"))
    return rows


def memory_rows(memory: dict[str, dict[str, Any]]) -> list[Row]:
    section = "memory (4096² inputs, ~10 MB)"
    return [
        Row(section, f"{name}: peak RSS", figures["peak_rss_mib"], limit=FC_MINIMUM_MIB, unit=" MiB")
        for name, figures in memory.items()
    ]


def render(rows: list[Row]) -> str:
    """A Markdown table (also readable as plain text)."""
    header = ["section", "metric", "ours", "naive", "target", "verdict (ours)"]
    lines = [[*row.cells(), row.verdict] for row in rows]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in lines)])


def as_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [{**asdict(row), "verdict": row.verdict} for row in rows]


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _cell(value: float | None, unit: str) -> str:
    return "" if value is None else f"{_number(value)}{unit}"
