"""The event codec: the envelope, the registry of event types, one encoder, one decoder.

Every message on a topic is one JSON envelope (docs/events.md § 1) whose ``data`` is a
contract: a ``msgspec.Struct`` registered for (type, schema_version) in ``registry``
(``shared/contracts/``). Every producer builds its events with :func:`make_envelope`
and writes them with :func:`encode`; every consumer reads them with :func:`decode` (or
:func:`decode_head` then :meth:`EventRegistry.decode_data`, to skip types it does not
need without parsing their data). A message the decoder refuses raises a
:class:`DecodeError` whose text is the reason a consumer parks it with:
``MalformedEnvelope`` (not an envelope), ``UnknownEventType`` (a type or version nobody
registered), ``InvalidData`` (data that fail the contract).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Callable, Generic, TypeVar

import msgspec

from shared.ids import new_uuid
from shared.logging import current_correlation_id

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class Envelope(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One event on the wire. The field names and their order are the wire format
    (docs/events.md § 1): existing events keep decoding, byte for byte the same."""

    id: uuid.UUID = msgspec.field(default_factory=new_uuid)
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    schema_version: Annotated[int, msgspec.Meta(ge=1)] = 1
    occurred_at: Annotated[datetime, msgspec.Meta(tz=True)]
    producer: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    correlation_id: str | None = None
    data: T

    def to_bytes(self) -> bytes:
        return encode(self)

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> "Envelope":
        """The envelope with its data decoded by the default registry's contract."""
        return decode(raw)


class Contract(msgspec.Struct):
    """Base of every event payload (declared ``class X(Contract, kw_only=True)``: built by
    keyword). Unknown fields are ignored when decoding: contracts only grow (docs/events.md)."""


class DecodeError(ValueError):
    """A message the codec refuses; ``str(exc)`` is the reason it is parked with."""


class MalformedEnvelope(DecodeError):
    pass


class UnknownEventType(DecodeError, LookupError):
    pass


class InvalidData(DecodeError):
    pass


_encoder = msgspec.json.Encoder()
_head_decoder = msgspec.json.Decoder(Envelope[msgspec.Raw])


def encode(value: Any) -> bytes:
    """The JSON bytes of an envelope (or of any contract value): compact, UTF-8, times in
    RFC 3339 (UTC as ``Z``), decimals as strings."""
    return _encoder.encode(value)


def encode_str(value: Any) -> str:
    return _encoder.encode(value).decode()


def decode_head(raw: bytes | str) -> Envelope[msgspec.Raw]:
    """The envelope with ``data`` left undecoded (``msgspec.Raw``): enough to route it."""
    try:
        return _head_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise MalformedEnvelope(f"malformed envelope: {exc}") from None


class EventRegistry:
    """Maps (type, schema_version) to the contract of ``data`` (a ``msgspec.Struct``) and
    the type to its topic."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[msgspec.Struct]] = {}
        self._decoders: dict[tuple[str, int], msgspec.json.Decoder] = {}
        self._topics: dict[str, str] = {}

    def register(self, type_: str, *, topic: str, version: int = 1) -> Callable[[type[S]], type[S]]:
        def deco(model: type[S]) -> type[S]:
            existing = self._models.get((type_, version))
            if existing is not None and existing is not model:
                raise ValueError(f"event type {type_} v{version} registered twice")
            self._models[(type_, version)] = model
            self._decoders[(type_, version)] = msgspec.json.Decoder(model)
            self._topics[type_] = topic
            return model

        return deco

    def model_for(self, type_: str, version: int) -> type[msgspec.Struct]:
        try:
            return self._models[(type_, version)]
        except KeyError:
            raise UnknownEventType(f"unknown event type {type_!r} v{version}") from None

    def topic_for(self, type_: str) -> str:
        try:
            return self._topics[type_]
        except KeyError:
            raise UnknownEventType(f"unknown event type {type_!r}") from None

    def is_known(self, type_: str, version: int) -> bool:
        return (type_, version) in self._models

    def knows_type(self, type_: str) -> bool:
        """Some version of ``type_`` is registered (a consumer skips such a type it does not
        handle; a type nobody registered is parked)."""
        return type_ in self._topics

    def types(self) -> list[tuple[str, int, str]]:
        return sorted((t, v, self._topics[t]) for (t, v) in self._models)

    def data_from_json(self, type_: str, version: int, raw: bytes | str | msgspec.Raw) -> msgspec.Struct:
        """``data`` decoded and validated against the contract of (type, version)."""
        decoder = self._decoders.get((type_, version))
        if decoder is None:
            raise UnknownEventType(f"unknown event type {type_!r} v{version}")
        try:
            return decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidData(f"invalid data for {type_} v{version}: {exc}") from None

    def data_from_builtins(self, type_: str, version: int, value: Any) -> msgspec.Struct:
        """``data`` kept as JSON values (``to_builtins``, e.g. in a JSON column) decoded again."""
        try:
            return msgspec.convert(value, self.model_for(type_, version))
        except msgspec.ValidationError as exc:
            raise InvalidData(f"invalid data for {type_} v{version}: {exc}") from None

    def decode_data(self, head: Envelope) -> Envelope:
        """The envelope with ``data`` decoded by its contract (``head`` from :func:`decode_head`)."""
        return msgspec.structs.replace(head, data=self.data_from_json(head.type, head.schema_version, head.data))

    def decode(self, raw: bytes | str) -> Envelope:
        return self.decode_data(decode_head(raw))


registry = EventRegistry()


def decode(raw: bytes | str, reg: EventRegistry | None = None) -> Envelope:
    """A message's envelope with its data decoded by the registered contract; raises
    :class:`DecodeError` (the reason to park it)."""
    return (reg or registry).decode(raw)


def make_envelope(
    *,
    type_: str,
    key: str,
    producer: str,
    occurred_at: datetime,
    data: msgspec.Struct | dict[str, Any],
    version: int = 1,
    correlation_id: str | None = None,
    event_id: uuid.UUID | str | None = None,
    reg: EventRegistry = registry,
) -> Envelope:
    """Build an envelope, validating ``data`` against the registered contract: the
    producer sees exactly what its consumers will decode (a contract or a plain dict
    goes through JSON and the contract's decoder; a bad value raises ``InvalidData``)."""
    reg.model_for(type_, version)  # UnknownEventType before anything else
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise InvalidData(f"occurred_at of {type_} must be timezone-aware")
    if not (0 < len(key) <= 200 and 0 < len(producer) <= 80):
        raise InvalidData(f"the key (1-200 characters) or producer (1-80) of {type_} is out of bounds")
    try:
        payload = encode(data)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidData(f"invalid data for {type_} v{version}: {exc}") from None
    return Envelope(
        id=uuid.UUID(event_id) if isinstance(event_id, str) else (event_id or new_uuid()),
        type=type_,
        schema_version=version,
        occurred_at=occurred_at,
        producer=producer,
        key=key,
        correlation_id=correlation_id or current_correlation_id(),
        data=reg.data_from_json(type_, version, payload),
    )


def to_builtins(value: Any) -> Any:
    """A contract value as JSON-compatible Python values (dicts, lists, strings...)."""
    return msgspec.to_builtins(value)


__all__ = ["Contract", "DecodeError", "Envelope", "EventRegistry", "InvalidData", "MalformedEnvelope",
           "UnknownEventType", "decode", "decode_head", "encode", "encode_str", "make_envelope", "registry",
           "to_builtins"]
