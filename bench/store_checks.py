"""Cost of a token store's integrity checks: opening (validated), loading the manifest, verify(), and a prepare's check.

Builds a synthetic store the size of the bundled corpus (about 9,000 files and 1.5M events, random
tokens; the checks do not look at what the tokens mean), or measures an existing store, and times
each step beside its plain reference in the same process, in turns (median of --repeat rounds):

- open: ``TokenStore(path)`` (header field checks, strict .npy index with its SHA-256 and bounds,
  token file size) against the plain open it replaced (``json.loads`` of the header, ``np.load`` of the
  index, ``np.memmap`` of the tokens);
- manifest: ``store.records`` (each line checked, the index cross-checked, the SHA-256) against
  ``json.loads`` of every line;
- verify: ``store.verify()`` (every stream hashed against its ``tokens_sha256``), which training runs
  once at start, against reading the token file once (``hashlib.sha256`` of all its bytes);
- prepare's check: opening a ``StoreWriter`` on the store (what a rerun of ``prepare`` pays before it
  tokenizes anything).

    python bench/store_checks.py                       # synthetic, bundled-corpus size
    python bench/store_checks.py --files 90000 --events 15000000
    python bench/store_checks.py --store ~/.cache/midilm/stores/music21-bach-essen
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)  # this folder's tokenize.py would shadow the standard library's tokenize module

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from midilm import vocab  # noqa: E402
from midilm.data import TokenStore  # noqa: E402
from midilm.data.integrity import stream_sha256  # noqa: E402
from midilm.data.manifest import RESULT_FIELDS, counts, identity, resolve  # noqa: E402
from midilm.data.writer import StoreWriter  # noqa: E402
from midilm.tokenizer import TokenizerOptions  # noqa: E402


def synthetic_store(folder: Path, files: int, events: int, seed: int = 0) -> Path:
    """A committed store of ``files`` random token streams, ``events`` rows in all."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(2, rng.poisson(events / files, size=files))
    spec = TokenizerOptions().spec()
    results = []
    with StoreWriter(folder, spec) as writer:
        for i, length in enumerate(lengths):
            tokens = rng.integers(0, vocab.VOCAB_SIZE, size=(int(length), vocab.EVENT_LEN), dtype=np.uint16)
            result = dict.fromkeys(RESULT_FIELDS)
            result.update(path=f"/corpus/piece-{i:06d}.mid", sha256=hashlib.sha256(tokens.tobytes()).hexdigest(), size=int(length) * 40)
            result.update(mtime_ns=0, tokens_sha256=stream_sha256(tokens), events=int(length) - 2, notes=int(length) // 2, seconds=1.0)
            result.update(dropped={}, warnings=[], quality_ok=True, quality_reasons=[])
            results.append(writer.append(result, tokens))
        rows, index = resolve(results, ratios=(0.8, 0.1, 0.1))
        settings = {"split_ratios": [0.8, 0.1, 0.1], "split_file": None, "split_file_sha256": None, "quality_filter": False}
        writer.commit(rows, index, {"identity": identity(spec, rows), "counts": counts(rows), "settings": settings})
    return folder


def plain_open(path: Path) -> tuple:
    header = json.loads((path / "store.json").read_text())
    index = np.load(path / header["files"]["index"])
    tokens = np.memmap(path / header["files"]["tokens"], dtype="<u2", mode="r", shape=(header["rows"], vocab.EVENT_LEN))
    return header, index, tokens


def plain_manifest(path: Path) -> list:
    header = json.loads((path / "store.json").read_text())
    with open(path / header["files"]["manifest"], encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def plain_read(path: Path) -> str:
    header = json.loads((path / "store.json").read_text())
    digest = hashlib.sha256()
    with open(path / header["files"]["tokens"], "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_manifest(path: Path) -> list:
    return TokenStore(path).records


def verified(path: Path) -> None:
    TokenStore(path).verify()


def writer_opened(path: Path) -> None:
    StoreWriter(path, TokenStore(path).tokenizer_spec).close()


def median_seconds(function: Callable[[Path], object], path: Path) -> float:
    started = time.perf_counter()
    function(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="measure this store instead of a synthetic one")
    parser.add_argument("--files", type=int, default=9_000, help="files of the synthetic store")
    parser.add_argument("--events", type=int, default=1_500_000, help="event rows of the synthetic store")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; the median is printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.store or synthetic_store(Path(scratch) / "store", args.files, args.events)
        store = TokenStore(path)
        size_mb = (path / store.header["files"]["tokens"]).stat().st_size / 1e6
        print(
            f"{path}: {len(store.records)} files, {store.header['rows']:,} rows ({size_mb:.1f} MB of tokens); load average {os.getloadavg()[0]:.1f}"
        )
        pairs = {
            "open": (TokenStore, plain_open),
            "manifest": (checked_manifest, plain_manifest),
            "verify": (verified, plain_read),
            "prepare's check (StoreWriter open)": (writer_opened, plain_read),
        }
        for name, (checked, plain) in pairs.items():
            rounds = [(median_seconds(checked, path), median_seconds(plain, path)) for _ in range(args.repeat)]
            checked_s = statistics.median(r[0] for r in rounds)
            plain_s = statistics.median(r[1] for r in rounds)
            print(f"{name:<36} {checked_s * 1000:9.1f} ms   plain {plain_s * 1000:8.1f} ms   ratio {checked_s / plain_s:5.2f}x")


if __name__ == "__main__":
    main()
