"""Locks for every command that samples: the config's locks and the controls'
instrument plan, applied through the sampler's masks by one :class:`Timeline`.

``midilm generate``, the app, ``midilm.generate`` and evaluation all build their
start rows and constraints with :func:`generation_setup`; a direct
``sample_events`` call still obeys the config's locks (:func:`with_config_locks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from midilm import vocab
from midilm.sample.config import Controls, SamplingConfig
from midilm.sample.instruments import InstrumentPlan, named_plan, texture_tracks
from midilm.sample.rules import EventRules, LockRules
from midilm.sample.sampler import GenerationResult
from midilm.sample.timeline import Timeline


def controls_plan(controls: Controls | None, locks: LockRules) -> InstrumentPlan | None:
    """The plan the controls name, when they name instruments and lock them."""
    if controls is None or not controls.lock_instruments or not (controls.instruments.strip() or controls.drums.strip()):
        return None
    return named_plan(controls.instruments, controls.drums, avoid_channels=locks.disabled)


@dataclass
class GenerationSetup:
    """The start rows and constraints of a generation, and the step that tidies its samples."""

    start: np.ndarray
    constraints: list[Any]
    plan: InstrumentPlan | None = None

    def finish(self, result: GenerationResult) -> GenerationResult:
        """The samples with each named instrument's events on its own track (the model may
        have spread an instrument over several track numbers; see EventRules)."""
        if self.plan is None:
            return result
        start = len(self.start)
        samples = [np.concatenate([s[:start], self.plan.retracked(s[start:])]) for s in result.samples]
        return replace(result, samples=samples)


def generation_setup(
    config: SamplingConfig, prompt: np.ndarray | None = None, controls: Controls | None = None, vocab_size: int = vocab.VOCAB_SIZE
) -> GenerationSetup:
    """The start rows and constraints of a generation: the prompt or the controls'
    events (instruments on channels the locks leave free), and a :class:`Timeline`
    applying the locks and, with ``controls.lock_instruments``, the named instruments."""
    from midilm.sample.sampler import start_rows

    locks = LockRules.from_config(config)
    start = start_rows(prompt, controls, avoid_channels=locks.disabled)
    plan = controls_plan(controls, locks)
    if plan is None and not locks.any():
        return GenerationSetup(start, [])
    rules = EventRules(locks, plan, config.num_samples, shares=plan is not None, voice_tracks=texture_tracks(plan, set()) if plan else None)
    return GenerationSetup(start, [Timeline(rules, start, config.num_samples, vocab_size)], plan)


def with_config_locks(config: SamplingConfig, start: np.ndarray, constraints: Sequence[Any], vocab_size: int) -> list[Any]:
    """``constraints``, plus a :class:`Timeline` of the config's locks unless one of them is a timeline already (it applies them)."""
    constraints = list(constraints)
    locks = LockRules.from_config(config)
    if not locks.any() or any(isinstance(c, Timeline) for c in constraints):
        return constraints
    return [*constraints, Timeline(EventRules(locks, None, config.num_samples), start, config.num_samples, vocab_size)]
