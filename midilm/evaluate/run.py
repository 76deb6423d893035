"""``evaluate_checkpoint``: every measure of one model on one store, in one dict."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from midilm.errors import ConfigError
from midilm.evaluate.compare import compare_sets
from midilm.evaluate.config import EvaluateConfig
from midilm.evaluate.features import piece_features
from midilm.evaluate.memorization import MemorizationIndex, SharedRun, event_rows
from midilm.notes import Notes, notes_of_tokens


@dataclasses.dataclass
class Evaluation:
    """The numbers (``result``, what ``evaluation.json`` holds) and the pieces
    behind them, which the report draws."""

    result: dict[str, Any]
    samples: list[np.ndarray]
    generated_notes: list[Notes]
    generated_features: dict[str, np.ndarray]
    reference_features: dict[str, np.ndarray]


def _open_store(store: Any) -> Any:
    from midilm.data import TokenStore

    return store if isinstance(store, TokenStore) else TokenStore(store)


def _settings(config: EvaluateConfig | None, settings: dict[str, Any]) -> EvaluateConfig:
    known = {f.name for f in dataclasses.fields(EvaluateConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown evaluation setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    config = dataclasses.replace(config or EvaluateConfig(), **settings)
    config.validate()
    return config


def _paths_by_index(store: Any) -> dict[int, str]:
    return {int(r["index"]): str(r["path"]) for r in store.records if r.get("index") is not None}


def reference_indices(store: Any, split: str, count: int, seed: int) -> np.ndarray:
    """``count`` files of the split drawn without replacement (all if fewer), in store order."""
    files = store.split(split)
    if len(files) <= count:
        return files
    return np.sort(np.random.default_rng(seed).choice(files, size=count, replace=False))


def memorization(samples: list[np.ndarray], reference: list[np.ndarray], train_store: Any) -> dict[str, Any]:
    """Longest runs of events the samples share with the training split, and,
    as a baseline, those that held-out files cut to the samples' length share with it."""
    train_files = train_store.split("train")
    index = MemorizationIndex([np.asarray(train_store.tokens(int(i))) for i in train_files])
    paths = _paths_by_index(train_store)

    def described(run: SharedRun, i: int) -> dict[str, Any]:
        row: dict[str, Any] = {"sample": i, "events": run.events, "sample_event": run.sample_event}
        if run.events:
            file = int(train_files[run.train_piece])
            row.update(train_file=file, path=paths.get(file, ""), train_event=run.train_event)
        return row

    runs = index.longest_shared_runs(samples)
    lengths = [max(len(event_rows(s)), 1) for s in samples]
    cut = max(lengths)
    baseline = index.longest_shared_runs([event_rows(r)[:cut] for r in reference])
    return {
        "train_files": len(train_files),
        "train_events": int(index.train.lengths.sum()),
        "longest": max((r.events for r in runs), default=0),
        "mean": float(np.mean([r.events for r in runs])),
        "mean_share": float(np.mean([r.events / n for r, n in zip(runs, lengths, strict=True)])),
        "reference_longest": max((r.events for r in baseline), default=0),
        "reference_mean": float(np.mean([r.events for r in baseline])) if baseline else float("nan"),
        "per_sample": [described(run, i) for i, run in enumerate(runs)],
    }


def sample_summary(samples: list[np.ndarray], notes: list[Notes]) -> dict[str, Any]:
    """Mean size of the generated samples."""
    return {
        "count": len(samples),
        "events_mean": float(np.mean([len(event_rows(s)) for s in samples])),
        "notes_mean": float(np.mean([len(n) for n in notes])),
        "seconds_mean": float(np.mean([n.seconds for n in notes])),
    }


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    store: Any,
    config: EvaluateConfig | None = None,
    *,
    sampling: Any = None,
    train_store: Any = None,
    out: str | os.PathLike | None = None,
    adapter: str | os.PathLike | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Evaluate a model (any source ``midilm.load_model`` takes: a run folder, an
    exported or SkyTNT folder, a hub id, ...; ``adapter``: a LoRA adapter folded
    in) on a token store (path or :class:`~midilm.data.TokenStore`).

    ``settings`` override fields of ``config`` (``split="test", samples=16, ...``);
    ``sampling`` is a :class:`~midilm.sample.SamplingConfig` for temperature,
    top-p, top-k and seed; memorization is checked against ``train_store``'s
    train split (default: ``store``'s). With ``out``, also writes
    ``evaluation.json``, ``report.md``, plots and the samples there.
    Returns what ``evaluation.json`` holds.
    """
    evaluation = run_evaluation(checkpoint, store, _settings(config, settings), sampling=sampling, train_store=train_store, adapter=adapter)
    if out is not None:
        from midilm.evaluate.report import write_outputs

        write_outputs(evaluation, Path(out))
    return evaluation.result


def run_evaluation(
    checkpoint: str | os.PathLike | None,
    store: Any,
    config: EvaluateConfig,
    *,
    sampling: Any = None,
    train_store: Any = None,
    adapter: str | os.PathLike | None = None,
) -> Evaluation:
    """The work behind :func:`evaluate_checkpoint`, keeping the pieces for the report."""
    from midilm.evaluate.likelihood import likelihood
    from midilm.evaluate.samples import generate_samples, syntax_errors
    from midilm.model import count_parameters
    from midilm.runtime import resolve_device
    from midilm.sample.config import SamplingConfig
    from midilm.train import load_for_inference

    config.validate()
    store = _open_store(store)
    device = resolve_device(config.device)
    loaded = load_for_inference(checkpoint, device, adapter=adapter)
    trained_on = loaded.run.data.tokenizer
    if trained_on and trained_on != store.tokenizer_spec:
        raise ConfigError(
            f"{store.path}: tokenized with other options than {loaded.source} was trained on; its likelihood would not mean anything"
        )
    sampling = dataclasses.replace(
        sampling or SamplingConfig(), num_samples=min(config.sample_batch, max(config.samples, 1)), events=config.events
    )
    sampling.validate()
    model = loaded.model
    result: dict[str, Any] = {
        "checkpoint": str(loaded.source),
        "store": str(store.path),
        "model": {"arch": loaded.run.model.arch, "parameters": count_parameters(model), "step": loaded.meta.get("step")},
        "settings": dataclasses.asdict(config),
        "sampling": {k: getattr(sampling, k) for k in ("temperature", "top_p", "top_k", "min_events", "seed")},
        "timing_seconds": {},
    }
    timing = result["timing_seconds"]
    if config.likelihood:
        began = time.perf_counter()
        window = config.window_events or loaded.run.train.window_events or model.config.context_events
        if window > model.config.context_events:
            raise ConfigError(f"window_events {window} does not fit the model's context of {model.config.context_events} events")
        result["likelihood"] = likelihood(model, store, config.split, window, config.batch_size, device)
        timing["likelihood"] = time.perf_counter() - began
    samples: list[np.ndarray] = []
    generated_notes: list[Notes] = []
    generated = reference = {}
    if config.samples:
        began = time.perf_counter()
        samples = generate_samples(model, config.samples, sampling, config.sample_batch)
        timing["sampling"] = time.perf_counter() - began
        began = time.perf_counter()
        generated_notes = [notes_of_tokens(s) for s in samples]
        chosen = reference_indices(store, config.split, config.reference_pieces, sampling.seed)
        reference_tokens = [np.asarray(store.tokens(int(i))) for i in chosen]
        generated = piece_features(generated_notes)
        reference = piece_features([notes_of_tokens(t) for t in reference_tokens])
        result.update(
            syntax=syntax_errors(samples),
            samples=sample_summary(samples, generated_notes),
            reference={"split": config.split, "files": [int(i) for i in chosen]},
            music=compare_sets(generated, reference),
        )
        timing["music_statistics"] = time.perf_counter() - began
        began = time.perf_counter()
        result["memorization"] = memorization(
            samples, reference_tokens[: config.samples], _open_store(train_store) if train_store is not None else store
        )
        timing["memorization"] = time.perf_counter() - began
    return Evaluation(result, samples, generated_notes, generated, reference)
