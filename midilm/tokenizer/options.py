"""Tokenizer options: one frozen dataclass shared by the Python API, the CLI and stores."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from midilm import vocab

TOKENIZER_VERSION = "v2-1"
"""Changes whenever the tokens made from the same file and options change;
stores rebuild and checkpoints refuse data made under another version."""


@dataclass(frozen=True)
class TokenizerOptions:
    """How a MIDI file becomes v2 tokens (SkyTNT midi-model, ``MIDITokenizerV2.tokenize``).

    ``optimise`` is the reference's ``set_optimise_midi``: it supplies the default
    of the three switches below it, each of which can also be set on its own.
    """

    optimise: bool = field(
        default=True,
        metadata={
            "help": "renumber tracks and channels, add default instruments, drop events of channels without notes (the reference's optimise_midi)"
        },
    )
    cc_eps: int = field(
        default=4, metadata={"help": "drop a control change whose value is within this distance of the last kept value of that controller"}
    )
    tempo_eps: int = field(default=4, metadata={"help": "drop a tempo change within this many bpm of the last kept tempo"})
    add_bos_eos: bool = field(default=True, metadata={"help": "start the sequence with a BOS row and end it with an EOS row"})
    remap_track_channel: bool | None = field(
        default=None,
        metadata={"help": "give each (channel, track) with notes its own track and pack channels densely (default: follow --optimise)"},
    )
    add_default_instr: bool | None = field(
        default=None,
        metadata={"help": "add program 0 at time 0 to channels that have notes but no program change (default: follow --optimise)"},
    )
    remove_empty_channels: bool | None = field(
        default=None, metadata={"help": "drop program and control changes of channels that have no notes (default: follow --optimise)"}
    )

    def resolved(self) -> TokenizerOptions:
        """These options with every ``None`` switch replaced by ``optimise``."""
        if None not in (self.remap_track_channel, self.add_default_instr, self.remove_empty_channels):
            return self
        return dataclasses.replace(
            self,
            remap_track_channel=self.optimise if self.remap_track_channel is None else self.remap_track_channel,
            add_default_instr=self.optimise if self.add_default_instr is None else self.add_default_instr,
            remove_empty_channels=self.optimise if self.remove_empty_channels is None else self.remove_empty_channels,
        )

    def spec(self) -> dict[str, Any]:
        """JSON-able description of the tokens these options make: the resolved
        options, the tokenizer version and the vocabulary name. Two option sets
        with equal specs make identical tokens."""
        out: dict[str, Any] = dataclasses.asdict(self.resolved())
        out["tokenizer_version"] = TOKENIZER_VERSION
        out["vocab"] = vocab.spec()["name"]
        return out
