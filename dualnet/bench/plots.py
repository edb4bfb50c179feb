"""PNG plots of a benchmark report (matplotlib, Agg backend: no display needed).

* ``ratio_<group>.png``: the torch/TF time ratio per measurement (log axis, 95% CI bars; > 1
  means TensorFlow is faster), one bar per kernel × shape × dtype × device × mode.
* ``overhead.png``: dualnet/native time ratio per network, pass and backend (1 = no overhead).
* ``time_vs_size_<group>.png``: median time against work per call on log-log axes, one line
  per kernel and entrant, coloured by entrant, with the measured-peak roofline for reference.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

_COLOURS = {"torch": "tab:red", "tensorflow": "tab:blue"}
_MODE_STYLE = {"eager": "-", "compile": "--", "function": "--", "xla": ":"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _shape(r: dict[str, Any]) -> str:
    return "x".join(map(str, r["shape"]))


def _ratio_bars(records: list[dict[str, Any]], title: str, xlabel: str, path: Path) -> Path:
    plt = _pyplot()
    # The record carrying a ratio is the TF entrant (backends) or the dualnet one (overhead):
    # its mode names the pairing, its backend the framework.
    labels = [f"{r['kernel']} {_shape(r)} {r['pass'].replace('forward', 'fwd')} "
              f"{r['dtype']} {r['device']} "
              f"{r['backend'] + ' ' if r['compare'] == 'overhead' else ''}{r['mode']}"
              for r in records]  # fmt: skip
    med = [r["ratio"]["median"] for r in records]
    lo = [m - r["ratio"]["ci_low"] for m, r in zip(med, records, strict=True)]
    hi = [r["ratio"]["ci_high"] - m for m, r in zip(med, records, strict=True)]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.22 * len(records)))
    y = list(range(len(records)))
    colours = ["tab:blue" if m > 1 else "tab:red" for m in med]
    ax.barh(y, [m - 1 for m in med], left=1, color=colours, alpha=0.7,
            xerr=[lo, hi], ecolor="black", capsize=2)  # fmt: skip
    ax.axvline(1, color="black", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels overlap on narrow ranges
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _time_vs_size(records: list[dict[str, Any]], group: str, peaks: dict[str, Any],
                  path: Path) -> Path | None:  # fmt: skip
    plt = _pyplot()
    lines: dict[tuple[str, ...], list[tuple[float, float]]] = defaultdict(list)
    compute = any(r.get("flops") for r in records)
    for r in records:
        work = r.get("flops") if compute else r.get("bytes")
        if not work or not r.get("stats"):
            continue
        key = (r["kernel"], r["label"], r["mode"], r["dtype"], r["device"], r["pass"])
        lines[key].append((work, r["stats"]["median"]))
    if not any(len(v) > 1 for v in lines.values()):
        return None  # one size per kernel: nothing to plot against size
    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen = set()
    for key, points in lines.items():
        points.sort()
        label = f"{key[1]} {key[2]}"
        ax.plot([p[0] for p in points], [p[1] for p in points],
                _MODE_STYLE.get(key[2], "-"), marker="o", ms=3, lw=1, alpha=0.6,
                color=_COLOURS.get(key[1], "gray"),
                label=None if label in seen else label)  # fmt: skip
        seen.add(label)
    xs = sorted({p[0] for v in lines.values() for p in v})
    for device, peak in peaks.items():  # roofline: the fastest this work could possibly run
        rate = (peak.get("matmul", {}).get("float32") or {}).get("gflops") if compute else (
            (peak.get("copy") or {}).get("gbs"))  # fmt: skip
        if rate:
            ax.plot(
                [xs[0], xs[-1]],
                [xs[0] / rate / 1e9, xs[-1] / rate / 1e9],
                color="black",
                lw=1,
                ls="-.",
                label=f"{device} peak {rate:.0f} {'GFLOP/s' if compute else 'GB/s'}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FLOP per call" if compute else "bytes moved per call (read + write)")
    ax.set_ylabel("median time per call [s]")
    ax.set_title(f"{group}: time vs size (one line per kernel)", fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write every plot the report has data for; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = report["results"]
    written: list[Path] = []
    groups = dict.fromkeys(r["group"] for r in results)
    for group in groups:
        mine = [r for r in results if r["group"] == group]
        backs = [r for r in mine if r.get("ratio") and r["compare"] == "backends"]
        if backs:
            written.append(_ratio_bars(
                backs, f"{group}: torch time / TensorFlow time (>1: TensorFlow faster)",
                "torch / tensorflow (median of paired rounds, 95% CI)",
                out / f"ratio_{group}.png"))  # fmt: skip
        path = _time_vs_size(
            mine, group, report.get("peaks", {}), out / f"time_vs_size_{group}.png"
        )
        if path is not None:
            written.append(path)
    over = [r for r in results if r.get("ratio") and r["compare"] == "overhead"]
    if over:
        written.append(
            _ratio_bars(
                over,
                "dualnet time / hand-written native time (1 = no overhead)",
                "dualnet / native (median of paired rounds, 95% CI)",
                out / "overhead.png",
            )
        )
    return written
