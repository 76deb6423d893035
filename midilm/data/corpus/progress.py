"""What converting a corpus costs, and a progress bar whose time left follows that cost."""

from __future__ import annotations

from pathlib import PurePosixPath

from midilm.data.corpus.catalog import CorpusUnit

SECONDS_PER_PIECE = 0.01
SECONDS_PER_BYTE: dict[str, float] = {".abc": 33e-6, ".mxl": 25e-6, ".xml": 2.2e-6, ".musicxml": 2.2e-6, ".krn": 58e-6}
"""CPU-seconds a piece costs to convert: a fixed part, and a part per byte of
score file by format (compressed MusicXML costs ten times more per byte than
plain MusicXML). Measured with music21 10.5.1 on a 2-core machine (see
``docs/corpus.md``); only the ratios matter, for the order of the jobs and
the progress bar's estimate of the time left."""


def estimated_cpu_seconds(unit: CorpusUnit) -> float:
    """What converting ``unit`` should cost, by :data:`SECONDS_PER_BYTE` (an unknown format counts as ABC)."""
    per_byte = SECONDS_PER_BYTE.get(PurePosixPath(unit.source).suffix.lower(), SECONDS_PER_BYTE[".abc"])
    return len(unit.outputs()) * SECONDS_PER_PIECE + unit.cost * per_byte


class ConversionProgress:
    """A progress bar of a conversion that advances by each job's estimated cost,
    not by pieces: an ABC tune converts in a seventh of a chorale's time, so
    counting pieces would promise the end far too early while chorales convert.
    The pieces converted so far are shown beside it."""

    def __init__(self, units: list[CorpusUnit], description: str, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.description = description
        self.pieces_total = sum(len(u.outputs()) for u in units)
        self.pieces_done = 0
        if enabled:
            tqdm.write(f"{description}: {self.pieces_total} pieces to MIDI, once (later runs read them from the cache)")
        self.bar = tqdm(
            total=sum(estimated_cpu_seconds(u) for u in units),
            desc=self._counts(),
            disable=not enabled,
            smoothing=0.1,
            bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
        )

    def done(self, unit: CorpusUnit) -> None:
        self.pieces_done += len(unit.outputs())
        self.bar.set_description_str(self._counts(), refresh=False)
        self.bar.update(estimated_cpu_seconds(unit))

    def _counts(self) -> str:
        return f"{self.description}: {self.pieces_done}/{self.pieces_total} pieces"

    def __enter__(self) -> ConversionProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()
