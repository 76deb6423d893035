"""The model card (``README.md``) of an exported model or adapter.

Every figure comes from the model's own records: its config (architecture,
sizes, the equivalent training command), its checkpoint meta (step, validation
loss), ``evaluation.json`` files written by ``midilm evaluate``, and the token
store it was trained on (files, events and the licence of every training file)
when that store is on this machine.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from midilm import __version__
from midilm.config import to_dict

LIBRARY_NAME = "midilm"
TAGS = ("midi", "symbolic-music", "music-generation", "midilm")


@dataclass
class DataFacts:
    """The training store as far as this machine knows it."""

    path: str
    identity: str
    available: bool = False
    files: dict[str, int] = field(default_factory=dict)
    train_events: int = 0
    licences: dict[str, int] = field(default_factory=dict)


@dataclass
class CardFacts:
    """What a model card says, gathered by :mod:`midilm.hub.export`."""

    title: str
    run: Any  # midilm.train.RunConfig
    meta: dict[str, Any]
    parameters: int
    weights_file: str
    weights_dtype: str
    weights_bytes: int
    source: str
    data: DataFacts
    evaluations: list[dict[str, Any]]
    licence: str
    folder_name: str
    notes: str = ""
    adapter_parameters: int = 0
    """For an adapter card: the adapter's own parameters (``parameters`` is then the base's)."""


def store_facts(path: str | Path, identity: str) -> DataFacts:
    """Files per split, training events and licences of a store, when it is here and unchanged."""
    from midilm.data import TokenStore
    from midilm.errors import StoreError

    facts = DataFacts(path=str(path), identity=identity)
    try:
        store = TokenStore(path)
    except (StoreError, OSError):
        return facts
    if identity and store.identity != identity:
        return facts
    train = set(int(i) for i in store.split("train"))
    facts.available = True
    facts.files = {split: len(store.split(split)) for split in ("train", "val", "test")}
    facts.train_events = int(store.lengths(store.split("train")).sum())
    facts.licences = dict(
        Counter(str(r.get("licence") or "not recorded") for r in store.records if r.get("index") is not None and int(r["index"]) in train)
    )
    return facts


def training_command(run: Any) -> str:
    """A ``midilm train`` command equivalent to a run's recorded config (every
    setting that differs from what the CLI would choose), which today's CLI runs as written."""
    from midilm.model import preset_config
    from midilm.train.config import TrainConfig

    options = ["midilm train", f"--data {run.data.store or 'STORE'}"]
    if run.init:
        options.append(f"--init {run.init}")
    else:
        default = preset_config(run.model.arch, "small").resolved()
        options += [f"--arch {run.model.arch}", *_options(default, run.model.resolved(), skip=("arch",))]
    options += _options(TrainConfig(), run.train, skip=("device", "tensorboard", "num_workers"))
    return " \\\n  ".join(_wrap(options))


def _options(default: Any, actual: Any, *, skip: tuple[str, ...]) -> list[str]:
    """The command-line options that turn ``default`` into ``actual``."""
    out = []
    for f in dataclasses.fields(actual):
        value = getattr(actual, f.name)
        if f.name in skip or value == getattr(default, f.name):
            continue
        flag = f.name.replace("_", "-")
        out.append(f"--{flag}" if value is True else f"--no-{flag}" if value is False else f"--{flag} {value}")
    return out


def _wrap(options: list[str], width: int = 100) -> list[str]:
    lines, line = [], ""
    for option in options:
        if line and len(line) + len(option) + 1 > width:
            lines.append(line)
            line = option
        else:
            line = f"{line} {option}".strip()
    return [*lines, line]


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def evaluation_rows(facts: CardFacts) -> list[str]:
    """One table row per split measured; validation from training when no evaluation covers it."""
    rows = []
    splits = {e["likelihood"]["split"] for e in facts.evaluations if "likelihood" in e}
    if "val" not in splits and "val_nats_per_event" in facts.meta:
        rows.append(
            f"| val | {_number(facts.meta['val_nats_per_event'])} | {_number(facts.meta.get('val_loss'))} | - | "
            f"{facts.meta.get('val_events', '-')} events | the training run's last evaluation at step {facts.meta.get('step', '-')} |"
        )
    for e in facts.evaluations:
        if "likelihood" not in e:
            continue
        lik = e["likelihood"]
        rows.append(
            f"| {lik['split']} | {_number(lik['nats_per_event'])} | {_number(lik['loss'])} | {_number(lik.get('bits_per_second'), 1)} | "
            f"{lik['files']} files, {lik['events']} events | `midilm evaluate` |"
        )
    return rows


def sample_lines(facts: CardFacts) -> list[str]:
    lines = []
    for e in facts.evaluations:
        if "syntax" in e:
            syntax, samples, memo = e["syntax"], e["samples"], e.get("memorization", {})
            lines.append(
                f"- {samples['count']} samples of up to {e['settings']['events']} events (mean {samples['events_mean']:.0f} events, "
                f"{samples['seconds_mean']:.0f} s): {syntax['invalid_rows']} syntax errors in {syntax['rows']} rows; longest run of events "
                f"shared with a training file {memo.get('longest', '-')} (held-out files: {memo.get('reference_longest', '-')})."
            )
    return lines


def model_card(facts: CardFacts) -> str:
    """The card as Markdown, with the Hub's YAML header."""
    from midilm.data.corpus.catalog import LICENCES

    run, c = facts.run, facts.run.model.resolved()
    is_adapter = bool(facts.adapter_parameters)
    front = ["---", f"library_name: {LIBRARY_NAME}", f"license: {facts.licence}", "tags:", *[f"- {tag}" for tag in TAGS]]
    if run.init:
        front.append(f"base_model: {run.init.removeprefix('hf:').split('@')[0]}")
    lines = [*front, "---", "", f"# {facts.title}", ""]
    what = "A LoRA adapter for" if is_adapter else "A"
    lines += [
        f"{what} `{c.arch}` model of midilm over SkyTNT's v2 MIDI tokens (8 tokens per event, vocabulary of {c.vocab_size}), "
        f"exported by midilm {__version__} from `{facts.source}`.",
        "",
        "## Architecture",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{c.arch}` (see midilm's docs/models.md) |",
        f"| parameters | {facts.parameters:,}" + (f" in the base; the adapter {facts.adapter_parameters:,}" if is_adapter else "") + " |",
        f"| context | {c.context_events} events |",
        f"| weights | `{facts.weights_file}`, {facts.weights_dtype}, {facts.weights_bytes / 2**20:.1f} MB |",
        f"| tokenizer | v2, optimise_midi {'on' if (run.data.tokenizer or {}).get('optimise', True) else 'off'} |",
        "",
        "Sizes (`config.json` holds them all):",
        "",
        "```json",
        json.dumps({k: v for k, v in to_dict(c).items() if v}, indent=None),
        "```",
        "",
    ]
    if is_adapter:
        lines += [
            f"LoRA rank {run.train.lora}, alpha {run.train.lora_alpha}, on the `{run.train.lora_targets or 'attention and MLP projection'}` layers "
            f"of the base `{run.init}` (weights sha256 `{run.init_sha256}`); applied to another base it is refused.",
            "",
        ]
    lines += _data_section(facts, LICENCES)
    lines += ["## Training", ""]
    if not run.data.store and not run.init:
        lines += [f"Trained outside midilm ({facts.meta.get('source', facts.source)}); midilm holds no record of its training.", ""]
    else:
        step = facts.meta.get("step")
        lines.append((f"These weights are from step {step} of the run. " if step is not None else "") + "An equivalent command:")
        lines += ["", "```bash", training_command(run), "```", ""]
    rows = evaluation_rows(facts)
    lines += ["## Evaluation", ""]
    if rows:
        lines += ["| split | nats/event | nats/token | bits/s of music | measured on | by |", "|---|---:|---:|---:|---|---|", *rows, ""]
    else:
        lines += ["Not measured: run `midilm evaluate --checkpoint RUN --split test` before exporting.", ""]
    lines += sample_lines(facts)
    lines += ["", "## Intended use", ""]
    lines += [
        "Generating MIDI in the style of its training data, from scratch, from controls (instruments, drums, tempo, metre, key) or "
        "continuing a MIDI prompt, with midilm's grammar-constrained sampler (every generated event decodes); and as a base for "
        "fine-tuning on your own collection. It knows only the music of its training data, writes symbolic MIDI (no audio), and its "
        "terms are those of its data and licence above.",
        "",
        "## How to load",
        "",
        "```bash",
        f"midilm generate --checkpoint path/to/{facts.folder_name} --num-samples 2 --audio",
        "```",
        "",
        "```python",
        "import midilm",
        "",
        f'model = midilm.load_model("path/to/{facts.folder_name}")  # an nn.Module in eval mode',
        "```",
        "",
        f"Uploaded to the Hugging Face Hub (`hf upload OWNER/NAME path/to/{facts.folder_name}`), it loads from anywhere as "
        '`--checkpoint hf:OWNER/NAME` or `midilm.load_model("hf:OWNER/NAME")`.',
    ]
    if facts.notes:
        lines += ["", "## Notes", "", facts.notes.strip()]
    return "\n".join(lines) + "\n"


def _data_section(facts: CardFacts, licences: dict[str, str]) -> list[str]:
    data = facts.data
    lines = ["## Data", ""]
    if not data.available:
        lines += [
            f"Trained on the token store `{data.path}` (identity `{data.identity or 'not recorded'}`), which was not on the machine that "
            "exported this model, so its files and licences are not listed here.",
            "",
        ]
        return lines
    files = ", ".join(f"{split} {n:,}" for split, n in data.files.items())
    lines += [
        f"The token store `{Path(data.path).name}` (identity `{data.identity}`): files per split {files}; "
        f"{data.train_events:,} events in the training split.",
        "",
        "| licence of the training files | files | terms |",
        "|---|---:|---|",
    ]
    for name, count in sorted(data.licences.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {count:,} | {licences.get(name, 'as the files state')} |")
    return [*lines, ""]
