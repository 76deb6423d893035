"""Step 4: default instruments, and key signatures detected from the notes or fixed."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.layout import Instruments
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import KEY_SIG, PATCH
from midilm.vocab import DRUM_CHANNEL, NO_KEY_SF


def default_instruments(instruments: list[Instruments], batch: Batch) -> list[tuple[int, ...]]:
    """Step 4a: program 0 at time 0 on the home track of every channel that has
    notes but no program change (the drum channel included), as events to
    append."""
    added = []
    for file, (of_file, report) in enumerate(zip(instruments, batch.reports, strict=True)):
        rows = [
            (PATCH, 0, of_file.home[c], c, 0, 0, 0, file) for c in of_file.channels if c not in of_file.patch_channels and c in of_file.home
        ]
        report.add("default_patch", len(rows))
        added += rows
    return added


def detect_key(pitch_class_hist: np.ndarray, threshold: float = 0.7) -> int | None:
    """Root (0 = C) of the major key whose scale the 7 most used pitch
    classes form, or None (the reference's ``detect_key_signature``)."""
    hist = pitch_class_hist.tolist()
    total = sum(hist)
    if total == 0:
        return None
    top = sorted(range(12), key=lambda pc: -hist[pc])[:7]
    if sum(hist[pc] for pc in top) / total < threshold:
        return None
    scale = sorted(top)
    semitones = [scale[i] for i in range(7) if scale[i] - scale[i - 1] in (1, -11)]
    if len(semitones) != 2:
        return None
    return {5: semitones[0], 7: semitones[1]}.get(semitones[1] - semitones[0])


def key_to_sf(root: int, minor: int) -> int:
    """Sharps (+) or flats (-) of a key, the reference's ``key2sf``."""
    sf = (root * 7) % 12
    if sf > 6 or (minor == 1 and sf >= 5):
        sf -= 12
    return sf


def fix_key_signatures(
    events: Columns,
    key_sf: tuple[np.ndarray, np.ndarray],
    pitch_class_hists: list[np.ndarray],
    instruments: list[Instruments],
    options: TokenizerOptions,
    batch: Batch,
) -> tuple[list[int], list[tuple[int, ...]]]:
    """Step 4b: in a file with no key signature, or only C major/A minor ones
    (``key_sf``, FILE and sf of the key signatures the reference looks at),
    detect the key from the notes: add it to every track, or write it into
    the existing ones (in place); if no key is found, the C major/A minor
    ones are removed. Returns the events to remove and the key signatures
    to append."""
    files, sf_values = key_sf
    looked_at = np.bincount(files, minlength=batch.count)
    known = np.bincount(files[sf_values != NO_KEY_SF], minlength=batch.count)
    undecided = (known == 0).nonzero()[0].tolist()
    if not undecided:
        return [], []
    rows = (events.kind == KEY_SIG).nonzero()[0]
    if not batch.single:  # copies appended by step 3 follow every file's events
        rows = rows[np.argsort(events.file[rows], kind="stable")]
    bounds = np.searchsorted(events.file[rows], np.arange(batch.count + 1)).tolist()
    removed, rewritten, added = [], [], []
    for file in undecided:
        root = detect_key(pitch_class_hists[file])
        report = batch.reports[file]
        of_file = rows[bounds[file] : bounds[file + 1]].tolist() if looked_at[file] else []
        if root is None:
            if looked_at[file] > len(of_file):
                report.warn("the reference crashes on this file (raw mode, duplicate key signatures); they are removed")
            report.drop("default_key_signature", len(of_file))
            removed += of_file
            continue
        sf = key_to_sf(root, 0) + NO_KEY_SF
        track_channels = instruments[file].track_channels
        if not looked_at[file]:
            new = [
                (KEY_SIG, 0, track, NO_KEY_SF if channels == [DRUM_CHANNEL] else sf, 0, 0, 0, file)
                for track, channels in track_channels.items()
                if not (options.remap_track_channel and track == 0)
            ]
            report.add("detected_key_signature", len(new))
            added += new
            continue
        rewritten += [(row, sf) for row in of_file if track_channels.get(int(events.track[row])) != [DRUM_CHANNEL]]
    if rewritten:
        at, sf_of_row = zip(*rewritten, strict=True)
        events.param0[list(at)] = sf_of_row
        events.param1[list(at)] = 0
    return removed, added
