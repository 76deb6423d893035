"""Every architecture, registered once: its name and the class that declares it.

The class (a :class:`midilm.model.base.MidilmModel`) holds everything about the
architecture: its config defaults and checks, how it is built, which training
view feeds it, how its loss logits are computed, its incremental decoders and
its size figures. Training, sampling, evaluation, export and the app ask the
class; none of them tests an architecture's name. This table is torch-free, so
the CLI can offer ``--arch`` without importing torch; the class is imported on
first use. Adding an architecture is its own module plus one line here
(docs/design.md walks through ``gpt`` as the example).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from midilm.errors import ConfigError

if TYPE_CHECKING:
    from midilm.model.base import MidilmModel

ARCHITECTURES: dict[str, str] = {
    "seed": "midilm.model.seed:SeedModel",
    "gpt": "midilm.model.gpt:GPT",
    "hier": "midilm.model.hier:HierModel",
    "skytnt": "midilm.model.skytnt:SkyTNTModel",
}
"""Architecture name -> ``module:class`` of the model that declares it."""

ARCHS: tuple[str, ...] = tuple(ARCHITECTURES)


def architecture(name: str) -> type[MidilmModel]:
    """The model class registered as ``name``."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"model arch: unknown architecture {name!r}; choose one of {', '.join(ARCHS)}")
    module_name, class_name = ARCHITECTURES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)
