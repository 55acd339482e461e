"""The declared flows as values (:class:`Flow`, its :class:`Trigger`, the :class:`FlowSet`),
kept apart from :mod:`portal.flows` (the service: loading, settings, runs) so the per-app state
(:mod:`portal.state`) can hold them without importing any service."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Flow", "FlowSet", "Trigger"]


@dataclass(frozen=True)
class Trigger:
    """What starts a flow: ``type`` ``"app_event"`` (``name`` is the event name) or
    ``"webhook"`` (``name`` is a trigger of the app's provider webhooks)."""

    type: Literal["app_event", "webhook"]
    name: str

    def to_dict(self) -> dict[str, str]:
        """``{"type", "name"}``."""
        return {"type": self.type, "name": self.name}


@dataclass(frozen=True)
class Flow:
    """One declared flow (a validated entry of a flows file)."""

    name: str
    title: str
    description: str
    app: str
    trigger: Trigger
    function: str
    params: Mapping[str, Any]
    settings_schema: Mapping[str, Any]
    source: str = ""

    @property
    def key(self) -> str:
        """``<app>/<name>``: how runs and logs name the flow."""
        return f"{self.app}/{self.name}"

    @property
    def schema_hash(self) -> str:
        """SHA-256 (hex) of the settings schema's canonical JSON: a change makes every saved
        settings of the flow ``needs_settings``."""
        raw = json.dumps(self.settings_schema, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class FlowSet:
    """Every declared flow, in declaration order."""

    flows: tuple[Flow, ...] = field(default_factory=tuple)

    def __iter__(self) -> Any:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

    def get(self, app: str, name: str) -> Flow | None:
        """The flow ``name`` of ``app``, or ``None``."""
        return next((f for f in self.flows if f.app == app and f.name == name), None)

    def of_app(self, app: str) -> list[Flow]:
        """The flows of ``app``, in declaration order."""
        return [f for f in self.flows if f.app == app]
