"""Running and writing an accompany/infill evaluation: ``evaluation.json`` and ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from midilm.evaluate.around import PROCEDURES, SPAN_BARS
from midilm.evaluate.config import EvaluateConfig
from midilm.evaluate.report import jsonable

LETTERS = {"interleave": "(a)", "anticipate": "(b)", "unconditional": "(c)"}
WHAT = {
    "interleave": "kept music placed as its time comes",
    "anticipate": "kept music read ahead (--anticipation)",
    "unconditional": "baseline: nothing kept but tempo, metre and key (infill: and the music before the span)",
}


def evaluate_task(checkpoint: Any, store: Any, config: EvaluateConfig, sampling: Any, out: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate ``config.task`` for a checkpoint on a store and write the report into ``out``."""
    from midilm.data import TokenStore
    from midilm.evaluate.around import evaluate_around
    from midilm.runtime import resolve_device
    from midilm.sample.around import AroundModel
    from midilm.train import load_for_inference

    config.validate()
    loaded = load_for_inference(checkpoint, resolve_device(config.device))
    around = AroundModel.of(loaded)
    store = store if isinstance(store, TokenStore) else TokenStore(store)
    window = config.window_events or loaded.run.train.window_events or loaded.model.config.context_events
    result = evaluate_around(
        around,
        store,
        config.task,
        split=config.split,
        pieces=config.pieces,
        window_events=window,
        samples=config.samples,
        sampling=sampling,
    )
    result.update(
        checkpoint=str(loaded.source), store=str(store.path), window_events=window, anticipation_beats=around.anticipation_steps / 16
    )
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "evaluation.json", "report": out / "report.md"}
    files["json"].write_text(json.dumps(jsonable(result), indent=2))
    files["report"].write_text(markdown(result))
    return result, files


def markdown(result: dict[str, Any]) -> str:
    """The report: nats per held-out event by procedure, then the music statistics of the parts written."""
    held = (
        "one note track of each file (the others kept)" if result["task"] == "accompany" else f"{SPAN_BARS} bars in the middle of each file"
    )
    lines = [
        f"# {result['task']} evaluation",
        "",
        f"Checkpoint `{result['checkpoint']}`, store `{result['store']}`, {result['split']} split: {result['cases']} held-out parts "
        f"({held}) from {result['files']} multi-track files; windows of {result['window_events']} events."
        + (
            f" Left out of every procedure, as anticipated rows cannot reach back far enough: {', '.join(result['left_out'])}."
            if result.get("left_out")
            else ""
        ),
        "",
        "| procedure | nats per held-out event | held-out events |",
        "|---|---:|---:|",
    ]
    baseline = result["procedures"].get("unconditional", {}).get("nats_per_event")
    for name in PROCEDURES:
        figures = result["procedures"].get(name)
        if figures is None:
            continue
        change = f" ({100 * (figures['nats_per_event'] / baseline - 1):+.1f} % vs (c))" if baseline and name != "unconditional" else ""
        lines.append(f"| {LETTERS[name]} {name}: {WHAT[name]} | {figures['nats_per_event']:.3f}{change} | {figures['events']} |")
    if "music" in result:
        lines += [
            "",
            "Music statistics of the parts written against the held-out parts (overlapping area of the intra-set and "
            "inter-set distance densities, after Yang & Lerch; near 1: alike):",
            "",
        ]
        features = list(next(iter(result["music"].values())))
        lines += [
            "| feature | " + " | ".join(f"{LETTERS[p]} {p}" for p in result["music"]) + " |",
            "|---|" + "---:|" * len(result["music"]),
        ]
        for feature in features:
            cells = [_overlap(result["music"][p][feature]) for p in result["music"]]
            lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _overlap(figures: dict[str, Any]) -> str:
    return "n/a" if "skipped" in figures else f"{figures['generated_oa']:.2f}"
