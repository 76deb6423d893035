"""The synthesizer in a process of its own: ``python -m midilm.render.synth_worker MIDI SOUNDFONT RATE OUT``.

symusic's synthesizer can loop forever on a few high notes of some
instruments (TimGM6mb's violin at pitches 98 to 107 at 22,050 Hz, with
symusic 0.5.9), inside C++ where no signal reaches it. Rendering here lets
:func:`midilm.render.audio.synthesize` give up after a time limit and go on.
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    import symusic

    midi_path, soundfont, sample_rate, out_path = argv
    score = symusic.Score(midi_path).to("second")
    audio = symusic.Synthesizer(sf_path=soundfont, sample_rate=int(sample_rate)).render(score, stereo=True)
    np.save(out_path, np.asarray(audio, dtype=np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
