"""A saved layer's state token, bound to the state its file holds.

A stateful layer's ``state_token`` names what it learned, and the pipeline's fingerprint (which
decides what ``transform(cache=True)`` serves from storage) includes it. A file records the
token, but a file can say anything: one that records a layer's token beside other fitted
arrays would share that layer's fingerprint, and the rows it computed would be served to the
real pipeline. So a loaded layer's token is derived from the token recorded *and* a digest of
its state as read: its encoded hyperparameters and fitted state, with every array and artifact
known by the digest of its bytes (not by its member's name). Different state never shares a
token; the same file loads with the same token every time, in every process.

Saving gives the layer the token that loading will derive, and remembers the token it
recorded (:attr:`StatefulLayer.recorded_token`): saving it again unchanged records that token
again, so a file saved from a loaded pipeline loads with the same token as the pipeline it was
saved from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from megatron.layers.base import StatefulLayer


def member_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(values: list[Any], members: Mapping[str, str]) -> str:
    """A digest of encoded ``values`` (as the description holds them) in which every member
    name they mention is replaced by the digest of that member's bytes (``members``: name to
    digest, for every member the layer's state reads), with those digests themselves."""

    def bound(value: Any) -> Any:
        if isinstance(value, str):
            return f"sha256:{members[value]}" if value in members else value
        if isinstance(value, list):
            return [bound(v) for v in value]
        if isinstance(value, dict):
            return {key: bound(v) for key, v in value.items()}
        return value

    text = json.dumps([bound(values), sorted(members.values())], separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def derived_token(recorded: str, digest: str) -> str:
    """The token of a layer whose file records ``recorded`` and whose state has ``digest``."""
    return hashlib.sha256(f"megatron state token\0{recorded}\0{digest}".encode()).hexdigest()[:32]


def recorded_token(layer: StatefulLayer) -> str:
    """The token to record for ``layer``: the one its file recorded while the layer keeps the
    token it was given then, its own token otherwise (it was fitted since)."""
    recorded = layer.recorded_token
    return str(layer.state_token if recorded is None else recorded)


def bind(layer: StatefulLayer, recorded: str, derived: str) -> None:
    """Give the saved ``layer`` the token ``derived`` from its file's ``recorded`` one, as
    loading the file will; what it learned stays as it is."""
    layer.restore(layer.metadata, layer.fitted, state_token=derived, recorded_token=recorded)
