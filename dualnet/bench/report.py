"""Tables and comparisons of benchmark records (the JSON written by the runner)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from dualnet.bench.kernels import GROUPS
from dualnet.errors import bad_value

HEADERS = ("kernel", "shape", "pass", "dtype", "device", "mode", "backend", "median", "spread",
           "n", "GFLOP/s|GB/s", "% peak", "ratio", "1st call", "note")  # fmt: skip


# Short names of the passes in tables ("train": one whole optimizer step).
PASS_NAMES = {"forward": "fwd", "forward+backward": "fwd+bwd", "train": "train"}


def load(path: str | Path) -> dict[str, Any]:
    """Read a JSON file written by ``dualnet bench``."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or "results" not in data:
        raise bad_value("path", str(path), "a JSON file written by `dualnet bench`")
    return data


def fmt_time(seconds: float | None) -> str:
    """``12.3 µs`` style, three significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    raise AssertionError("unreachable")


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def _throughput(r: dict[str, Any]) -> str:
    if r.get("gflops") is not None:
        return f"{r['gflops']:.3g} GFLOP/s"
    if r.get("gbs") is not None:
        return f"{r['gbs']:.3g} GB/s"
    return "-"


def _ratio(r: dict[str, Any]) -> str:
    ratio = r.get("ratio")
    if not ratio:
        return ""
    name = "t/tf" if ratio["name"] == "torch/tensorflow" else "dn/native"
    return f"{name} {ratio['median']:.2f} [{ratio['ci_low']:.2f}, {ratio['ci_high']:.2f}]"


def row(r: dict[str, Any]) -> list[str]:
    """One table row; a failed/skipped entrant shows its status and reason instead of times."""
    base = [r["kernel"], _shape(r["shape"]), PASS_NAMES.get(r["pass"], r["pass"]),
            r["dtype"], r["device"], r["mode"], r["label"]]  # fmt: skip
    if r["status"] != "ok" or not r.get("stats"):
        reason = (r.get("error") or "").splitlines()[0][:90] if r.get("error") else ""
        return [*base, r["status"].upper(), "", "", "", "", "", "", reason]
    s = r["stats"]
    spread = f"IQR ±{50 * (s['q3'] - s['q1']) / s['median']:.1f}%"
    if not r.get("converged"):
        spread += " *"  # the precision target was not reached within the budget
    pct = "" if r.get("pct_peak") is None else f"{r['pct_peak']:.1f}%"
    first = fmt_time(r.get("first_call_s"))
    return [*base, fmt_time(s["median"]), spread, str(s["n"]), _throughput(r), pct,
            _ratio(r), first, ""]  # fmt: skip


def tables(results: Iterable[dict[str, Any]], tablefmt: str = "simple") -> dict[str, str]:
    """One table per group, rows in run order."""
    by_group: dict[str, list[list[str]]] = {}
    for r in results:
        by_group.setdefault(r["group"], []).append(row(r))
    return {
        g: tabulate(by_group[g], headers=HEADERS, tablefmt=tablefmt, disable_numparse=True)
        for g in GROUPS
        if g in by_group
    }


def ratio_summary(results: Iterable[dict[str, Any]]) -> list[list[str]]:
    """Geometric mean (and range) of the ratios per group, device, dtype and pair of entrants
    (``torch:eager / tensorflow:eager``, ``dualnet[torch]:eager / native[torch]:eager``...):
    the headline numbers."""
    buckets: dict[tuple[str, ...], list[float]] = {}
    for r in results:
        ratio = r.get("ratio")
        if not ratio:
            continue
        key = (r["group"], ratio["name"], r["device"], r["dtype"], " / ".join(ratio["of"]))
        buckets.setdefault(key, []).append(ratio["median"])
    rows = []
    for key, values in buckets.items():
        geo = math.exp(sum(math.log(v) for v in values) / len(values))
        rows.append([*key, str(len(values)), f"{geo:.2f}", f"{min(values):.2f}",
                     f"{max(values):.2f}"])  # fmt: skip
    return rows


SUMMARY_HEADERS = ("group", "ratio", "device", "dtype", "of", "kernels", "geomean", "min",
                   "max")  # fmt: skip


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["id"], r["dtype"], r["device"], r["mode"], r["label"])


def compare(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """A table of median changes from ``old`` to ``new``, matched by kernel, dtype, device,
    mode and backend.

    A change counts as real ("faster"/"slower") only when the two medians' 95% CIs do not
    overlap; otherwise it is "~" (within noise). A kernel timed in one file and failed,
    skipped or unsupported in the other is listed too ("now failing" / "now ok", with the
    status), never dropped silently.
    """
    before = {_key(r): r for r in old["results"]}
    rows = []
    counts = {"faster": 0, "slower": 0, "~": 0, "now failing": 0, "now ok": 0, "only old": 0,
              "only new": 0}  # fmt: skip
    seen = set()

    def row(r: dict[str, Any], old_text: str, new_text: str, change: str, verdict: str) -> None:
        rows.append([r["kernel"], _shape(r["shape"]), r["pass"], r["dtype"], r["device"],
                     r["mode"], r["label"], old_text, new_text, change, verdict])  # fmt: skip

    for r in new["results"]:
        key = _key(r)
        seen.add(key)
        o = before.get(key)
        if o is None:
            if r.get("stats"):  # skipped/failed entries are not "new" timings
                counts["only new"] += 1
            continue
        a, b = o.get("stats"), r.get("stats")
        if a and not b:
            counts["now failing"] += 1
            row(r, fmt_time(a["median"]), r.get("status", "?"), "", "now failing")
            continue
        if b and not a:
            counts["now ok"] += 1
            row(r, o.get("status", "?"), fmt_time(b["median"]), "", "now ok")
            continue
        if not a:
            continue  # not timed in either file
        change = b["median"] / a["median"] - 1
        if b["ci_high"] < a["ci_low"]:
            verdict = "faster"
        elif b["ci_low"] > a["ci_high"]:
            verdict = "slower"
        else:
            verdict = "~"
        counts[verdict] += 1
        row(r, fmt_time(a["median"]), fmt_time(b["median"]), f"{100 * change:+.1f}%", verdict)
    counts["only old"] = sum(1 for k, r in before.items() if k not in seen and r.get("stats"))
    headers = ("kernel", "shape", "pass", "dtype", "device", "mode", "backend", "old", "new",
               "change", "verdict")  # fmt: skip
    return tabulate(rows, headers=headers, disable_numparse=True), counts
