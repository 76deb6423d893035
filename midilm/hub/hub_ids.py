"""Hugging Face Hub ids: ``hf:OWNER/NAME[@REVISION]`` resolved to a local snapshot.

Resolution goes through ``huggingface_hub``: its cache (``HF_HOME``,
``HF_HUB_CACHE``), its offline switch (``HF_HUB_OFFLINE=1``), its tokens
(``HF_TOKEN`` or ``hf auth login``) and its progress bars. Only the files a
model needs are fetched (configs, safetensors weights, the model card).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from midilm.errors import CheckpointError

PREFIX = "hf:"
_HUB_ID = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?$")
_PEFT_BASE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
FILES = ["*.json", "*.safetensors", "README.md"]
"""What a model or adapter repository holds that midilm reads."""


@dataclass(frozen=True)
class HubId:
    repo: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{PREFIX}{self.repo}" + (f"@{self.revision}" if self.revision else "")


def is_hub_id(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


def parse_hub_id(text: str) -> HubId:
    match = _HUB_ID.match(text)
    if match is None:
        raise CheckpointError(f"{text}: not a hub id; write hf:OWNER/NAME or hf:OWNER/NAME@REVISION")
    return HubId(match["repo"], match["revision"])


def from_peft_base(name: str) -> HubId | None:
    """A peft ``base_model_name_or_path`` that names a Hub repository (``OWNER/NAME``), else None."""
    return HubId(name) if _PEFT_BASE.match(name) and not Path(name).exists() else None


def download(hub_id: HubId) -> Path:
    """The local snapshot folder of a Hub repository, downloaded unless cached."""
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise CheckpointError(f"{hub_id}: hub ids need the huggingface_hub package (pip install huggingface_hub)") from exc
    try:
        return Path(snapshot_download(hub_id.repo, revision=hub_id.revision, allow_patterns=FILES))
    except LocalEntryNotFoundError as exc:
        why = "HF_HUB_OFFLINE is set: unset it to download" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached: connect"
        raise CheckpointError(
            f"{hub_id}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why} and run the command again, "
            f"or fetch it with `hf download {hub_id.repo}` on a machine that can and copy its cache (HF_HOME)"
        ) from exc
    except GatedRepoError as exc:
        raise CheckpointError(
            f"{hub_id}: this repository is gated: accept its terms on huggingface.co, then log in (hf auth login) or set HF_TOKEN"
        ) from exc
    except RevisionNotFoundError as exc:
        raise CheckpointError(f"{hub_id}: the repository has no revision {hub_id.revision!r}") from exc
    except RepositoryNotFoundError as exc:
        raise CheckpointError(
            f"{hub_id}: no such repository on the Hub (or it is private: log in with hf auth login or set HF_TOKEN)"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise CheckpointError(f"{hub_id}: download failed: {exc}") from exc
