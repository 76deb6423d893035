"""Run one fuzz target over seeded cases, each under a time and a memory guard.

    python tests/fuzz/runner.py TARGET --seed S --cases N --work DIR [--memory-mb M] [--case-seconds T]

Prints one JSON object (target, cases, outcomes, failures, seconds) and exits 1
when a case failed. A case fails when it raises anything but a
``MidilmError``, runs past ``--case-seconds``, or needs more than
``--memory-mb`` beyond what the process held after setting up
(``RLIMIT_AS``: a ``MemoryError`` instead of a machine brought down). Failing
inputs are kept under ``DIR/failures`` to replay. Targets mutate real files:
the golden MIDI files, a store and a checkpoint built here from them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mutations
import numpy as np

from midilm.data.workers import TimeLimitExceeded, time_limit
from midilm.errors import MidilmError

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
STORE_PIECES = ("bach_bwv1.6", "bach_bwv10.7", "folk_essen_altdeu10_1", "folk_essen_altdeu10_2", "m21_test01")


def limit_memory(extra_mb: int) -> None:
    """Cap this process's address space at what it maps now plus ``extra_mb``."""
    status = Path("/proc/self/status")
    if not status.exists():  # no /proc: the memory guard is Linux-only
        return
    mapped_kb = next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmSize:"))
    limit = mapped_kb * 1024 + extra_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def golden_midi() -> list[Path]:
    return sorted(GOLDEN.glob("*.mid"))


# ----- targets: setup(work) -> context; case(rng, context, folder) -> what happened ------------------------------


def setup_midi(work: Path) -> dict[str, Any]:
    return {"files": [path.read_bytes() for path in golden_midi()]}


def mutated_midi(rng: random.Random, context: dict[str, Any], *, long_varints: bool = False) -> tuple[bytes, str]:
    data = rng.choice(context["files"])
    if long_varints:
        return mutations.long_varint(rng, data)
    if rng.random() < 0.1:
        return mutations.splice(rng, data, rng.choice(context["files"]))
    return mutations.mutate_bytes(rng, data)


def case_tokenize(rng: random.Random, context: dict[str, Any], folder: Path, *, long_varints: bool = False) -> None:
    from midilm.tokenizer import tokenize

    data, what = mutated_midi(rng, context, long_varints=long_varints)
    path = folder / "case.mid"
    path.write_bytes(data)
    context["what"] = what
    tokenize(path if rng.random() < 0.5 else data)


def case_tokenize_many(rng: random.Random, context: dict[str, Any], folder: Path) -> None:
    from midilm.tokenizer import Tokenized, tokenize_many

    good = rng.choice(context["files"])
    batch = [mutated_midi(rng, context)[0] for _ in range(5)]
    position = rng.randrange(len(batch) + 1)
    batch.insert(position, good)
    for i, data in enumerate(batch):
        (folder / f"{i}.mid").write_bytes(data)
    context["what"] = f"a batch of 6, the unmutated file at {position}"
    results = list(tokenize_many(batch))
    if len(results) != len(batch):
        raise AssertionError(f"tokenize_many gave {len(results)} results for {len(batch)} files")
    (alone,) = tokenize_many([good])
    if type(alone) is not type(results[position]) or (
        isinstance(alone, Tokenized) and not np.array_equal(alone.tokens, results[position].tokens)
    ):
        raise AssertionError("the unmutated file's result in a batch of mutated files differs from its result alone")


def special_files(rng: random.Random, folder: Path) -> list[str]:
    """Files that are no MIDI file at all, named like one: a FIFO, a device, a socket, an empty file, a folder."""
    made = []
    if rng.random() < 0.3 and hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.mid")
        made.append("a FIFO")
    if rng.random() < 0.3 and Path("/dev/zero").exists():
        os.symlink("/dev/zero", folder / "zero.mid")
        made.append("a link to /dev/zero")
    if rng.random() < 0.2 and hasattr(socket, "AF_UNIX") and len(str(folder / "s.mid")) < 100:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(folder / "s.mid"))
        made.append("a socket")
    if rng.random() < 0.2:
        (folder / "empty.mid").write_bytes(b"")
        made.append("an empty file")
    return made


def case_prepare(rng: random.Random, context: dict[str, Any], folder: Path) -> None:
    from midilm.data import PrepareOptions, TokenStore, prepare
    from midilm.tokenizer import tokenize

    sources = folder / "sources"
    sources.mkdir()
    good = rng.sample(golden_midi()[:40], 2)
    for path in good:
        shutil.copy(path, sources / f"good-{path.name}")
    descriptions = []
    for i in range(4):
        data, what = mutated_midi(rng, context)
        (sources / f"bad-{i}.mid").write_bytes(data)
        descriptions.append(what)
    descriptions += special_files(rng, sources)
    context["what"] = "; ".join(descriptions)
    prepare([sources], folder / "store", PrepareOptions(workers=1), progress=False)
    store = TokenStore(folder / "store")
    store.verify()
    rows = {Path(r["path"]).name: r for r in store.records}
    for path in good:
        row = rows[f"good-{path.name}"]
        if row["status"] not in ("ok", "duplicate"):
            raise AssertionError(f"good file {path.name} has status {row['status']}: {row['reason']}")
        stored = store.rows(row["offset"], row["count"])
        if not np.array_equal(stored, tokenize(path).tokens):
            raise AssertionError(f"good file {path.name}: stored tokens differ from a direct tokenize")


def setup_tokens(work: Path) -> dict[str, Any]:
    return {"arrays": [np.load(path) for path in sorted(GOLDEN.glob("*.opt.npy"))[:30]]}


def case_detokenize(rng: random.Random, context: dict[str, Any], folder: Path) -> None:
    from midilm.tokenizer import detokenize, tokens_to_midi

    tokens, what = mutations.mutate_tokens(rng, rng.choice(context["arrays"]))
    context["what"] = what
    if isinstance(tokens, np.ndarray):
        np.save(folder / "case.npy", tokens, allow_pickle=False)
    (detokenize if rng.random() < 0.5 else tokens_to_midi)(tokens)


def npy_with_header(tokens: np.ndarray, rng: random.Random) -> tuple[bytes, str]:
    """An .npy file whose header was rewritten with an odd shape, dtype or order."""
    field = rng.choice(("shape", "descr", "fortran_order"))
    value = {
        "shape": rng.choice(((10**12, 8), (-1, 8), (len(tokens),), (len(tokens), 8, 8), (0, 8), (2**62, 2**62))),
        "descr": rng.choice(("<f8", "|O", "<i8", ">u2", "|b1", "<U4")),
        "fortran_order": True,
    }[field]
    header = {"descr": "<u2", "fortran_order": False, "shape": tokens.shape, field: value}
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + tokens.astype("<u2").tobytes(), f"npy header {field}={value}"


def case_detokenize_file(rng: random.Random, context: dict[str, Any], folder: Path) -> None:
    import io

    from midilm.cli import main

    tokens = rng.choice(context["arrays"])
    if rng.random() < 0.4:
        data, what = npy_with_header(tokens, rng)
    else:
        buffer = io.BytesIO()
        np.save(buffer, tokens)
        data, what = mutations.mutate_bytes(rng, buffer.getvalue()[: rng.choice((128, 10**9))])
    path = folder / "case.npy"
    path.write_bytes(data)
    context["what"] = what
    with contextlib.redirect_stderr(open(os.devnull, "w")):
        status = main(["detokenize", str(path), "--out", str(folder / "out.mid")])
    if status not in (0, 2):
        raise AssertionError(f"midilm detokenize exited {status}")


def setup_store(work: Path) -> dict[str, Any]:
    from midilm.data import PrepareOptions, TokenStore, prepare

    sources = work / "store-sources"
    sources.mkdir()
    for name in STORE_PIECES:
        shutil.copy(GOLDEN / f"{name}.mid", sources / f"{name}.mid")
    shutil.copy(GOLDEN / f"{STORE_PIECES[0]}.mid", sources / "copy.mid")
    (sources / "broken.mid").write_bytes(b"MThd broken")
    prepare([sources], work / "store", PrepareOptions(workers=1), progress=False)
    return {"sources": sources, "store": work / "store", "identity": TokenStore(work / "store").identity}


def damage_store(rng: random.Random, store: Path) -> str:
    header = json.loads((store / "store.json").read_text())
    files = header["files"]
    part = rng.choice(("header", "header", "index", "index", "manifest", "manifest", "tokens", "tokens", "journal"))
    if part == "header":
        if rng.random() < 0.7:
            document, what = mutations.mutate_json(rng, header)
            (store / "store.json").write_text(json.dumps(document))
        else:
            data, what = mutations.mutate_bytes(rng, (store / "store.json").read_bytes())
            (store / "store.json").write_bytes(data)
    elif part == "index":
        path = store / files["index"]
        if rng.random() < 0.5:
            index = np.load(path)
            row, column = rng.randrange(len(index)), rng.randrange(3)
            index[row, column] = rng.choice((-1, -(2**62), 2**62, 0, 3, header["rows"], header["rows"] + 1))
            np.save(path, index)
            what = f"index row {row} column {column} = {index[row, column]}"
        else:
            data, what = mutations.mutate_bytes(rng, path.read_bytes())
            path.write_bytes(data)
        if rng.random() < 0.5:  # a consistent forgery: the checksum matches the damaged file
            header.setdefault("checksums", {})["index"] = sha256_file(path)
            (store / "store.json").write_text(json.dumps(header))
            what += " (checksum updated)"
    elif part == "manifest":
        path = store / files["manifest"]
        lines = path.read_text().splitlines()
        if rng.random() < 0.6:
            number = rng.randrange(len(lines))
            document, what = mutations.mutate_json(rng, json.loads(lines[number]))
            lines[number] = json.dumps(document)
            path.write_text("\n".join(lines) + "\n")
            what = f"manifest line {number + 1}: {what}"
        else:
            data, what = mutations.mutate_bytes(rng, path.read_bytes())
            path.write_bytes(data)
        if rng.random() < 0.5:
            header.setdefault("checksums", {})["manifest"] = sha256_file(path)
            (store / "store.json").write_text(json.dumps(header))
            what += " (checksum updated)"
    elif part == "tokens":
        path = store / files["tokens"]
        size = path.stat().st_size
        action = rng.randrange(4)
        if action == 0:
            cut = rng.randrange(size)
            os.truncate(path, cut)
            what = f"token file cut to {cut} of {size} bytes"
        elif action == 1:
            path.unlink()
            what = "token file deleted"
        elif action == 2:
            start = rng.randrange(size)
            with open(path, "r+b") as handle:
                handle.seek(start)
                handle.write(bytes(min(size - start, rng.randint(1, 4096))))
            what = f"zeros written into the token file at {start}"
        else:
            cut = rng.randrange(size)
            os.truncate(path, cut)
            os.truncate(path, size)
            what = f"token file cut to {cut} then zero-filled back to {size} bytes (an older midilm's repair)"
    else:
        head = {"journal": 1, "tokenizer": header["tokenizer"], "tokens": files["tokens"]}
        entry = json.loads((store / files["manifest"]).read_text().splitlines()[0])
        if rng.random() < 0.3:
            head, what = mutations.mutate_json(rng, head)
            what = f"a journal head with {what}"
        else:
            entry, what = mutations.mutate_json(rng, entry)
            what = f"a journal entry with {what}"
        (store / "journal.jsonl").write_text("\n".join(json.dumps(line) for line in [head, entry]) + "\n")
    return f"{part}: {what}"


def sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def case_store(rng: random.Random, context: dict[str, Any], folder: Path) -> str:
    from midilm.data import PrepareOptions, TokenStore, prepare
    from midilm.errors import StoreError

    store = folder / "store"
    shutil.copytree(context["store"], store)
    what = damage_store(rng, store)
    context["what"] = what
    outcome = "ok"
    try:
        opened = TokenStore(store)
        for i in range(len(opened)):
            opened.tokens(i)
        _ = opened.records
        opened.verify()
    except StoreError:
        outcome = "refused"
    if rng.random() < 0.4:  # prepare again: the store is repaired or rebuilt, never left damaged
        prepare([context["sources"]], store, PrepareOptions(workers=1), progress=False)
        repaired = TokenStore(store)
        repaired.verify()
        # a journal entry that passes every check is taken as an interrupted run's result, so it may change the store
        if repaired.identity != context["identity"] and not what.startswith("journal"):
            raise AssertionError(f"prepare left identity {repaired.identity}, the undamaged store has {context['identity']}")
    return outcome


def setup_checkpoint(work: Path) -> dict[str, Any]:
    import torch

    from midilm import vocab
    from midilm.model import build_model, preset_config
    from midilm.train.checkpoint import save_checkpoint
    from midilm.train.config import RunConfig

    torch.manual_seed(0)
    config = preset_config("gpt", "tiny")
    config.context_events = 16
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters())
    state = {"optimizer": optimizer.state_dict(), "schedule": {}, "position": {"step": 1}, "rng": {"torch": torch.get_rng_state()}}
    save_checkpoint(work / "checkpoint", model, RunConfig(model=model.config, vocab=vocab.spec()), {"step": 1, "best_val_loss": 3.5}, state)
    return {"checkpoint": work / "checkpoint"}


def damage_checkpoint(rng: random.Random, folder: Path) -> str:
    from midilm.train.checkpoint import CONFIG_KEY, META_FILE, STATE_FILE, WEIGHTS_FILE

    part = rng.choice(("header", "config", "config", "weights", "meta", "state"))
    if part in ("header", "config"):
        data = (folder / WEIGHTS_FILE).read_bytes()
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        if part == "config":
            config, what = mutations.mutate_json(rng, json.loads(header["__metadata__"][CONFIG_KEY]))
            header["__metadata__"][CONFIG_KEY] = json.dumps(config)
        else:
            header, what = mutations.mutate_json(rng, header)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        (folder / WEIGHTS_FILE).write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])
    elif part == "weights":
        data = (folder / WEIGHTS_FILE).read_bytes()
        length = int.from_bytes(data[:8], "little")
        head, what = mutations.mutate_bytes(rng, data[: 8 + length])  # the header, where the bytes mean most
        (folder / WEIGHTS_FILE).write_bytes(head + data[8 + length :])
    elif part == "meta":
        if rng.random() < 0.6:
            document, what = mutations.mutate_json(rng, json.loads((folder / META_FILE).read_text()))
            (folder / META_FILE).write_text(json.dumps(document))
        else:
            data, what = mutations.mutate_bytes(rng, (folder / META_FILE).read_bytes())
            (folder / META_FILE).write_bytes(data)
    else:
        data, what = mutations.mutate_bytes(rng, (folder / STATE_FILE).read_bytes())
        (folder / STATE_FILE).write_bytes(data)
    return f"{part}: {what}"


def case_checkpoint(rng: random.Random, context: dict[str, Any], folder: Path) -> None:
    from midilm.train.checkpoint import load_for_inference, read_state

    checkpoint = folder / "checkpoint"
    shutil.copytree(context["checkpoint"], checkpoint)
    what = damage_checkpoint(rng, checkpoint)
    context["what"] = what
    try:
        load_for_inference(checkpoint)
    finally:
        read_state(checkpoint)


TARGETS: dict[str, tuple[Callable[[Path], dict[str, Any]], Callable[..., None]]] = {
    "tokenize": (setup_midi, case_tokenize),
    "tokenize-long-varints": (setup_midi, lambda rng, context, folder: case_tokenize(rng, context, folder, long_varints=True)),
    "tokenize_many": (setup_midi, case_tokenize_many),
    "prepare": (setup_midi, case_prepare),
    "detokenize": (setup_tokens, case_detokenize),
    "detokenize-npy-file": (setup_tokens, case_detokenize_file),
    "store": (setup_store, case_store),
    "checkpoint": (setup_checkpoint, case_checkpoint),
}


def run_case(case: Callable[..., Any], rng: random.Random, context: dict[str, Any], folder: Path, seconds: float) -> tuple[str, str]:
    """(outcome, detail): ok, refused (a MidilmError, raised or reported by the case), or a failure kind: exception, memory, timeout."""
    try:
        with time_limit(seconds, wall=True):
            outcome = case(rng, context, folder)
    except TimeLimitExceeded:
        return "timeout", f"still running after {seconds:g} s"
    except MidilmError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"[:200]
    except MemoryError:
        return "memory", "MemoryError: " + "".join(traceback.format_exc(limit=-3))[-600:]
    except Exception as exc:
        kind = "memory" if "allocate" in str(exc) else "exception"
        return kind, f"{type(exc).__name__}: {str(exc)[:300]}\n" + "".join(traceback.format_exc(limit=-4))[-900:]
    return outcome or "ok", ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--work", type=Path, required=True, help="an empty folder for inputs and kept failures")
    parser.add_argument("--memory-mb", type=int, default=1024, help="memory a case may take beyond the set-up process")
    parser.add_argument("--case-seconds", type=float, default=10.0)
    args = parser.parse_args()
    setup, case = TARGETS[args.target]
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    context = setup(args.work)
    limit_memory(args.memory_mb)
    outcomes: Counter[str] = Counter()
    failures = []
    for number in range(args.cases):
        rng = random.Random(f"{args.target}:{args.seed}:{number}")
        folder = args.work / f"case-{number}"
        folder.mkdir()
        context["what"] = ""
        outcome, detail = run_case(case, rng, context, folder, args.case_seconds)
        outcomes[outcome] += 1
        if outcome in ("ok", "refused"):
            shutil.rmtree(folder, ignore_errors=True)
        else:
            kept = args.work / "failures" / f"case-{number}"
            kept.parent.mkdir(exist_ok=True)
            shutil.move(folder, kept)
            failures.append({"case": number, "outcome": outcome, "input": context["what"], "detail": detail, "kept": str(kept)})
    report = {
        "target": args.target,
        "seed": args.seed,
        "cases": args.cases,
        "outcomes": dict(outcomes),
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(report))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
