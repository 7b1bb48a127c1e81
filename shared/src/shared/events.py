"""The event envelope and the registry of event types.

Every message on a topic is one JSON envelope. ``data`` is validated against the
model registered for (type, schema_version); an unregistered pair is "unknown"
and gets parked by consumers rather than crashing them.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.logging import current_correlation_id

M = TypeVar("M", bound=BaseModel)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = Field(min_length=1, max_length=120)
    schema_version: int = Field(default=1, ge=1)
    occurred_at: datetime
    producer: str = Field(min_length=1, max_length=80)
    key: str = Field(min_length=1, max_length=200)
    correlation_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        return v

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)


class UnknownEventType(LookupError):
    pass


class EventRegistry:
    """Maps (type, schema_version) to the pydantic model of ``data`` and its topic."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[BaseModel]] = {}
        self._topics: dict[str, str] = {}

    def register(self, type_: str, *, topic: str, version: int = 1) -> Callable[[type[M]], type[M]]:
        def deco(model: type[M]) -> type[M]:
            existing = self._models.get((type_, version))
            if existing is not None and existing is not model:
                raise ValueError(f"event type {type_} v{version} registered twice")
            self._models[(type_, version)] = model
            self._topics[type_] = topic
            return model

        return deco

    def model_for(self, type_: str, version: int) -> type[BaseModel]:
        try:
            return self._models[(type_, version)]
        except KeyError:
            raise UnknownEventType(f"unknown event type {type_!r} version {version}") from None

    def topic_for(self, type_: str) -> str:
        try:
            return self._topics[type_]
        except KeyError:
            raise UnknownEventType(f"unknown event type {type_!r}") from None

    def is_known(self, type_: str, version: int) -> bool:
        return (type_, version) in self._models

    def parse_data(self, env: Envelope) -> BaseModel:
        return self.model_for(env.type, env.schema_version).model_validate(env.data)

    def types(self) -> list[tuple[str, int, str]]:
        return sorted((t, v, self._topics[t]) for (t, v) in self._models)


registry = EventRegistry()


def make_envelope(
    *,
    type_: str,
    key: str,
    producer: str,
    occurred_at: datetime,
    data: BaseModel | dict[str, Any],
    version: int = 1,
    correlation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    reg: EventRegistry = registry,
) -> Envelope:
    """Build an envelope, validating ``data`` against the registered model."""
    model = reg.model_for(type_, version)
    payload = data if isinstance(data, BaseModel) else model.model_validate(data)
    if not isinstance(payload, model):
        payload = model.model_validate(payload.model_dump())
    return Envelope(
        id=event_id or uuid.uuid4(),
        type=type_,
        schema_version=version,
        occurred_at=occurred_at,
        producer=producer,
        key=key,
        correlation_id=correlation_id or current_correlation_id(),
        data=payload.model_dump(mode="json"),  # what model_dump_json writes, without a JSON round trip
    )


__all__ = ["Envelope", "EventRegistry", "UnknownEventType", "ValidationError", "make_envelope", "registry"]
