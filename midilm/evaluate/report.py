"""Writing an evaluation: ``evaluation.json``, ``report.md`` with its plots, and the samples."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from midilm import vocab
from midilm.evaluate.compare import grid_probabilities, inter_set_distances, intra_set_distances, shared_grid
from midilm.evaluate.features import DURATION_BIN_LABELS, FEATURE_UNITS, PITCH_CLASS_NAMES, VELOCITY_BIN_WIDTH
from midilm.evaluate.run import Evaluation

PIANO_ROLLS = 4
"""Samples drawn as piano rolls in the report (all are written as MIDI)."""
DISTANCES_PLOT = "distances.png"
HISTOGRAMS_PLOT = "histograms.png"
HISTOGRAM_FEATURES = {
    "pitch_class_histogram": PITCH_CLASS_NAMES,
    "duration_histogram": DURATION_BIN_LABELS,
    "velocity_histogram": tuple(f"{v}-{v + VELOCITY_BIN_WIDTH - 1}" for v in range(0, 128, VELOCITY_BIN_WIDTH)),
}


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(evaluation: Evaluation, out: Path) -> dict[str, Path]:
    """Write every file of an evaluation into ``out``; returns them by kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "evaluation.json", "report": out / "report.md"}
    files["json"].write_text(json.dumps(jsonable(evaluation.result), indent=2))
    plots: list[str] = []
    piano_rolls: list[str] = []
    if evaluation.samples:
        sample_files = write_samples(evaluation, out / "samples")
        files.update(sample_files)
        piano_rolls = [p.name for p in sample_files.values() if p.suffix == ".png"]
        if any("skipped" not in v for v in evaluation.result["music"].values()):
            plot_distances(evaluation, out / DISTANCES_PLOT)
            plots.append(DISTANCES_PLOT)
        plot_histograms(evaluation, out / HISTOGRAMS_PLOT)
        plots.append(HISTOGRAMS_PLOT)
    files["report"].write_text(markdown(evaluation.result, plots, piano_rolls))
    return files


def write_samples(evaluation: Evaluation, folder: Path) -> dict[str, Path]:
    """Each sample as MIDI, the first few also as piano rolls."""
    from midilm.render import render_piano_roll
    from midilm.tokenizer import tokens_to_midi

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for i, (tokens, notes) in enumerate(zip(evaluation.samples, evaluation.generated_notes, strict=True)):
        name = f"sample-{i:03d}"
        files[f"{name}.mid"] = folder / f"{name}.mid"
        files[f"{name}.mid"].write_bytes(tokens_to_midi(tokens))
        if i < PIANO_ROLLS:
            files[f"{name}.png"] = folder / f"{name}.png"
            render_piano_roll(notes, files[f"{name}.png"], title=name)
    return files


def _figure(rows: int, columns: int, width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def plot_distances(evaluation: Evaluation, path: Path) -> None:
    """For each feature, the densities of the two intra-set distances and the inter-set distances."""
    names = [n for n, v in evaluation.result["music"].items() if "skipped" not in v]
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = _figure(rows, columns, 4 * columns, 3 * rows)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        generated = _defined(evaluation.generated_features[name])
        reference = _defined(evaluation.reference_features[name])
        curves = {
            "generated (intra-set)": intra_set_distances(generated),
            "reference (intra-set)": intra_set_distances(reference),
            "generated vs reference (inter-set)": inter_set_distances(generated, reference),
        }
        grid = shared_grid(*curves.values())
        step = grid[1] - grid[0]
        for label, distances in curves.items():
            ax.plot(grid, grid_probabilities(distances, grid) / step, label=label)
        ax.set_xlim(left=max(grid[0], 0.0))  # distances are never negative; the kernels' tails are
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.set_xlabel(f"distance ({FEATURE_UNITS[name]})", fontsize="small")
    legend_axes = axes.flat[len(names)] if len(names) < axes.size else axes.flat[0]
    legend_axes.legend(
        *axes.flat[0].get_legend_handles_labels(), fontsize="small", loc="center" if legend_axes is not axes.flat[0] else "best"
    )
    figure.tight_layout()
    figure.savefig(path)


def plot_histograms(evaluation: Evaluation, path: Path) -> None:
    """Mean histograms of the generated and the reference pieces, side by side."""
    figure, axes = _figure(1, len(HISTOGRAM_FEATURES), 5 * len(HISTOGRAM_FEATURES), 3.2)
    for ax, (name, labels) in zip(axes.flat, HISTOGRAM_FEATURES.items(), strict=True):
        x = np.arange(len(labels))
        for offset, (label, table) in zip(
            (-0.2, 0.2), (("generated", evaluation.generated_features), ("reference", evaluation.reference_features)), strict=True
        ):
            defined = _defined(table[name])
            if len(defined):
                ax.bar(x + offset, defined.mean(axis=0), width=0.4, label=label)
        ax.set_xticks(x, labels, fontsize="x-small", rotation=45 if len(labels) > 8 else 0)
        ax.set_title(name.replace("_", " "), fontsize="medium")
        ax.set_ylabel("share of notes", fontsize="small")
    axes.flat[0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def _defined(points: np.ndarray) -> np.ndarray:
    return points[~np.isnan(points).any(axis=1)] if points.size else points


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(v if isinstance(v, str) else _number(v) for v in row) + " |" for row in rows]
    return lines + [""]


def markdown(result: dict[str, Any], plots: list[str], piano_rolls: list[str]) -> str:
    """The human-readable report of an evaluation result (see docs/evaluation.md)."""
    model = result["model"]
    settings = result["settings"]
    lines = [
        "# Evaluation",
        "",
        f"- checkpoint: `{result['checkpoint']}` ({model['arch']}, {model['parameters']:,} parameters, step {model['step']})",
        f"- data: `{result['store']}`, split `{settings['split']}`",
        "",
    ]
    if "likelihood" in result:
        lik = result["likelihood"]
        lines += [
            "## Likelihood",
            "",
            f"{lik['files']} files, {lik['seconds']:.0f} s of music, {lik['tokens']:,} tokens, {lik['events']:,} events, windows of {lik['window_events']} events.",
            "",
        ]
        lines += _table(
            ["nats per token", "perplexity", "nats per event", "bits per second"],
            [[lik["loss"], lik["ppl"], lik["nats_per_event"], lik["bits_per_second"]]],
        )
        slots = [[name, lik.get(f"loss_{name}"), lik.get(f"acc_{name}")] for name in vocab.SLOT_NAMES if f"loss_{name}" in lik]
        lines += ["Per slot (nats per token, top-1 accuracy):", ""] + _table(["slot", "loss", "accuracy"], slots)
    if "music" in result:
        lines += _samples_section(result, plots, piano_rolls)
    lines += [f"Timing (seconds): {', '.join(f'{k} {v:.1f}' for k, v in result['timing_seconds'].items())}.", ""]
    return "\n".join(lines)


def _samples_section(result: dict[str, Any], plots: list[str], piano_rolls: list[str]) -> list[str]:
    syntax, samples, memo = result["syntax"], result["samples"], result["memorization"]
    lines = [
        "## Generated samples",
        "",
        f"{samples['count']} samples ({samples['events_mean']:.0f} events, {samples['notes_mean']:.0f} notes, {samples['seconds_mean']:.1f} s on average), "
        f"sampling {', '.join(f'{k} {v}' for k, v in result['sampling'].items())}; MIDI files in `samples/`.",
        "",
        f"Syntax errors: {syntax['invalid_rows']} of {syntax['rows']} generated rows ({_number(100 * syntax['error_rate'])} %).",
        "",
        "## Music statistics",
        "",
        f"Against {len(result['reference']['files'])} files of the {result['reference']['split']} split. Distances between pieces, per feature "
        "(Yang & Lerch): intra-set within each set, inter-set across them; KL and overlapping area (OA) compare each set's intra-set "
        "distances with the inter-set distances. Generated close to reference: generated KL/OA near the reference's.",
        "",
    ]
    rows = []
    for name, v in result["music"].items():
        if "skipped" in v:
            rows.append([name] + ["n/a"] * 7)
            continue
        rows.append(
            [
                name,
                f"{v['generated_intra']['mean']:.3g} ± {v['generated_intra']['std']:.2g}",
                f"{v['reference_intra']['mean']:.3g} ± {v['reference_intra']['std']:.2g}",
                f"{v['inter']['mean']:.3g} ± {v['inter']['std']:.2g}",
                v["generated_kl"],
                v["generated_oa"],
                v["reference_kl"],
                v["reference_oa"],
            ]
        )
    lines += _table(["feature", "intra generated", "intra reference", "inter", "KL gen", "OA gen", "KL ref", "OA ref"], rows)
    scalars = [
        [name, v["generated_mean"][0], v["reference_mean"][0], FEATURE_UNITS[name]]
        for name, v in result["music"].items()
        if "skipped" not in v and len(v["generated_mean"]) == 1
    ]
    lines += ["Mean of each scalar feature:", ""] + _table(["feature", "generated", "reference", "unit"], scalars)
    lines += [f"![{p}]({p})" for p in plots] + [""]
    lines += [
        "## Memorization",
        "",
        f"Longest run of consecutive events a sample shares with the {memo['train_files']} training files ({memo['train_events']:,} events): "
        f"{memo['longest']} (mean {memo['mean']:.1f}, {100 * memo['mean_share']:.1f} % of a sample). "
        f"Held-out files cut to the same length share up to {memo['reference_longest']} (mean {_number(memo['reference_mean'])}).",
        "",
    ]
    lines += _table(
        ["sample", "events shared", "at sample event", "training file", "at event"],
        [
            [r["sample"], r["events"], r["sample_event"], f"`{r['path']}`", r["train_event"]]
            if r["events"]
            else [r["sample"], 0, "-", "-", "-"]
            for r in memo["per_sample"]
        ],
    )
    lines += [f"![{p}](samples/{p})" for p in piano_rolls] + [""]
    return lines
