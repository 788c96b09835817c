"""Plot a fan-out run: wall time and client CPU per mirror against N, one line per contender.

.venv/bin/python -m benchmarks.plot benchmarks/results/fanout.json benchmarks/results/fanout.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(results: Path, out: Path) -> Path:
    doc = json.loads(results.read_text())
    rows = doc["results"]
    contenders = sorted({r["contender"] for r in rows})
    fig, (wall_ax, cpu_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for c in contenders:
        pts = sorted(
            (r["n"], r["wall_s"], r["cpu_ms_per_mirror"]) for r in rows if r["contender"] == c
        )
        ns = [p[0] for p in pts]
        wall_ax.plot(ns, [p[1] for p in pts], marker="o", label=c)
        cpu_ax.plot(ns, [p[2] for p in pts], marker="o", label=c)
    wall_ax.set(
        xlabel="mirrors (N)",
        ylabel="wall time to last outcome (s)",
        yscale="log",
        title="Wall time",
    )
    cpu_ax.set(
        xlabel="mirrors (N)", ylabel="client CPU per mirror (ms)", title="Client CPU per mirror"
    )
    for ax in (wall_ax, cpu_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    machine = doc.get("machine", {})
    fig.suptitle(
        f"pushsync fan-out, {machine.get('cpus', '?')} CPUs, Python "
        f"{machine.get('python', '?')}, {machine.get('when', '')}",
        fontsize=10,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(plot(Path(sys.argv[1]), Path(sys.argv[2])))
