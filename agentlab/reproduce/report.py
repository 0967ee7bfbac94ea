"""Writers for reproduced tables: markdown (mean +- CI, IQM), CSV of cells, PNG bar chart."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentlab.reproduce.aggregate import summarize
from agentlab.files import atomic_write_text
from agentlab.plotting import pyplot, save_figure  # noqa: F401 - re-exported for the tables


def header(meta: dict[str, Any], caption: str) -> str:
    status = "complete" if meta.get("complete", True) else (
        f"INCOMPLETE: {meta.get('runs_done')}/{meta.get('runs_total')} runs finished")
    return (f"{caption}\n\nBudget `{meta.get('budget')}`, seeds {meta.get('seeds')}, git `{meta.get('git_sha')}`, "
            f"{status}.\nRegenerate: `{meta.get('command')}`\n")


def cell_values(records: list[dict[str, Any]], row_key: str, col_key: str,
                value: Callable[[dict[str, Any]], float]) -> dict[tuple[str, str], list[float]]:
    cells: dict[tuple[str, str], list[float]] = {}
    for rec in records:
        spec = rec["spec"]
        v = value(rec)
        if v is None or not np.isfinite(v):
            continue
        cells.setdefault((str(spec[row_key]), str(spec[col_key])), []).append(float(v))
    return cells


def write_score_table(records: list[dict[str, Any]], out_dir: str | Path, meta: dict[str, Any], *, name: str,
                      caption: str, value: Callable[[dict[str, Any]], float] = lambda r: r["result"]["score"],
                      row_key: str = "task", col_key: str = "algo", col_order: Sequence[str] | None = None,
                      row_order: Sequence[str] | None = None, ylabel: str = "normalised score",
                      digits: int = 1) -> list[Path]:
    """A rows x columns table of ``value`` over seeds: mean [95% CI] and IQM, plus an average row."""
    out = Path(out_dir)
    cells = cell_values(records, row_key, col_key, value)
    rows = list(row_order or sorted({r for r, _ in cells}))
    rows = [r for r in rows if any((r, c) in cells for c in {c for _, c in cells})]
    cols = list(col_order or sorted({c for _, c in cells}))
    cols = [c for c in cols if any((r, c) in cells for r in rows)]
    summ = {k: summarize(np.array(v)) for k, v in cells.items()}
    fmt = f"{{:.{digits}f}}"
    lines = [f"| {row_key} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for r in rows:
        parts = []
        for c in cols:
            s = summ.get((r, c))
            parts.append("—" if s is None else
                         f"{fmt.format(s['mean'])} [{fmt.format(s['ci_low'])}, {fmt.format(s['ci_high'])}] (n={s['n']})")
        lines.append(f"| {r} | " + " | ".join(parts) + " |")
    # average over rows of the per-seed values (only cells present for every row)
    avg_parts = []
    for c in cols:
        per_row = [np.mean(cells[(r, c)]) for r in rows if (r, c) in cells]
        all_vals = np.concatenate([cells[(r, c)] for r in rows if (r, c) in cells]) if per_row else np.array([])
        if per_row:
            s = summarize(all_vals)
            avg_parts.append(f"**{fmt.format(np.mean(per_row))}** (IQM {fmt.format(s['iqm'])})")
        else:
            avg_parts.append("—")
    lines.append("| **average** | " + " | ".join(avg_parts) + " |")
    md = f"# {name}\n\n" + header(meta, caption) + "\nCells: mean [95% bootstrap CI] over seeds.\n\n" + "\n".join(
        lines) + "\n"
    written = []
    p_md = out / f"{name}.md"
    atomic_write_text(p_md, md)
    written.append(p_md)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([row_key, col_key, "n", "mean", "std", "iqm", "ci_low", "ci_high", "values"])
    for r in rows:
        for c in cols:
            if (r, c) in summ:
                s = summ[(r, c)]
                w.writerow([r, c, s["n"], s["mean"], s["std"], s["iqm"], s["ci_low"], s["ci_high"],
                            " ".join(f"{v:.6g}" for v in cells[(r, c)])])
    p_csv = out / f"{name}.csv"
    atomic_write_text(p_csv, buf.getvalue())
    written.append(p_csv)
    written.append(bar_plot(summ, rows, cols, out / f"{name}.png", ylabel=ylabel, title=f"{name} ({meta.get('budget')})"))
    return written


def bar_plot(summ: dict[tuple[str, str], dict[str, float]], rows: list[str], cols: list[str], path: Path, *,
             ylabel: str, title: str) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) * max(1, len(cols)) / 2), 4))
    width = 0.8 / max(1, len(cols))
    x = np.arange(len(rows))
    for j, c in enumerate(cols):
        means = [summ[(r, c)]["mean"] if (r, c) in summ else np.nan for r in rows]
        lo = [summ[(r, c)]["mean"] - summ[(r, c)]["ci_low"] if (r, c) in summ else 0 for r in rows]
        hi = [summ[(r, c)]["ci_high"] - summ[(r, c)]["mean"] if (r, c) in summ else 0 for r in rows]
        ax.bar(x + j * width - 0.4 + width / 2, means, width, yerr=[lo, hi], capsize=2, label=c)
    ax.set_xticks(x)
    ax.set_xticklabels(rows, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def curve_plot(records: list[dict[str, Any]], path: str | Path, *, key: str = "curve", x_label: str = "steps",
               y_label: str = "score", group: Callable[[dict[str, Any]], str] = lambda r: r["spec"]["algo"],
               panel: Callable[[dict[str, Any]], str] = lambda r: r["spec"]["task"], title: str = "") -> Path:
    """Learning curves: one panel per task, one line (mean +- std over seeds) per group.

    Each record's ``result[key]`` is a list of ``[x, y]`` pairs logged at the same x for every seed.
    """
    plt = pyplot()

    panels = sorted({panel(r) for r in records})
    # one colour per group across all panels (a group missing from one panel must not shift the others)
    colours = {g: f"C{i % 10}" for i, g in enumerate(sorted({group(r) for r in records}))}
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        groups: dict[str, list[np.ndarray]] = {}
        for r in records:
            if panel(r) == p and r["result"].get(key):
                groups.setdefault(group(r), []).append(np.asarray(r["result"][key], dtype=float))
        for g, curves in sorted(groups.items()):
            n = min(len(c) for c in curves)
            arr = np.stack([c[:n] for c in curves])
            xs, ys = arr[0, :, 0], arr[:, :, 1]
            ax.plot(xs, ys.mean(0), label=g, color=colours[g])
            ax.fill_between(xs, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), alpha=0.2, color=colours[g])
        ax.set_title(p, fontsize=9)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if groups:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path)
    return path
