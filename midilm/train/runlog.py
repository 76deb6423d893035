"""What a run leaves for people to read: metrics.jsonl, the loss curves PNG, TensorBoard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"


class MetricsLog:
    """Append-only ``metrics.jsonl``, one JSON object per logged step."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / METRICS_FILE

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill mid-write: everything after it is gone too
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows past ``step``: after a kill, the steps since the last
        checkpoint are replayed and must not be logged twice."""
        self._rewrite([row for row in self.rows() if row.get("step", 0) <= step])

    def amend(self, step: int, values: dict[str, Any]) -> None:
        """Merge ``values`` into the last row if it is ``step``'s, else add a row for it."""
        rows = self.rows()
        if rows and rows[-1].get("step") == step:
            rows[-1].update(values)
        else:
            rows.append({"step": step, **values})
        self._rewrite(rows)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()


def plot_curves(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """The notebook's two panels (loss, perplexity; train and validation) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["train_loss"]) for r in rows if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    fig, (ax_loss, ax_ppl) = plt.subplots(1, 2, figsize=(12, 4.5))
    for points, label in ((train, "train"), (val, "validation")):
        if not points:
            continue
        steps, losses = zip(*points, strict=True)
        marker = "o" if label == "validation" else None
        ax_loss.plot(steps, losses, label=label, marker=marker)
        ax_ppl.plot(steps, [math.exp(min(x, 50)) for x in losses], label=label, marker=marker)
    for ax, name in ((ax_loss, "loss (nats per token)"), (ax_ppl, "perplexity")):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax_ppl.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


class TensorBoardLog:
    """Scalars mirrored to TensorBoard when asked for."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, row: dict[str, Any]) -> None:
        step = row["step"]
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key.replace("_", "/", 1), value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
