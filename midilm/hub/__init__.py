"""Models that travel: hub ids, SkyTNT's checkpoints, midilm's exported folders and LoRA adapters.

Every command and ``midilm.load_model`` name a model the same way (see
:mod:`midilm.hub.sources`); ``midilm export`` writes one (:mod:`midilm.hub.export`).
Names load lazily, so importing the package costs nothing until one is used.
"""

from __future__ import annotations

from midilm.lazy import lazy_exports

_EXPORTS = {
    "load_model": "midilm.hub.sources",
    "resolve": "midilm.hub.sources",
    "Source": "midilm.hub.sources",
    "ExportRequest": "midilm.hub.export",
    "export_model": "midilm.hub.export",
    "FORMATS": "midilm.hub.export",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
