"""The envelope codec (shared.events): one encoder, one decoder, reasons to park."""
from datetime import datetime, timezone
from decimal import Decimal

import msgspec
import pytest

from shared.events import (Contract, EventRegistry, InvalidData, MalformedEnvelope, UnknownEventType,
                           decode, decode_head, encode, make_envelope)


class Thing(Contract, kw_only=True):
    n: int
    at: datetime | None = None


def reg():
    r = EventRegistry()
    r.register("thing.happened", topic="things", version=1)(Thing)
    return r


def test_envelope_round_trip_keeps_every_field():
    r = reg()
    env = make_envelope(type_="thing.happened", key="o-1", producer="p", occurred_at=datetime.now(timezone.utc),
                        data={"n": 3}, correlation_id="cid-1", reg=r)
    back = decode(encode(env), r)
    assert back == env
    assert back.schema_version == 1 and back.correlation_id == "cid-1" and back.data == Thing(n=3)


def test_the_wire_layout_is_the_envelope_of_the_docs():
    """Field names and order as docs/events.md § 1 lists them (events written before the
    codec decode, and consumers reading raw JSON keep working)."""
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    env = make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=at, data=Thing(n=1, at=at),
                        event_id="00000000-0000-4000-8000-000000000001", reg=reg())
    assert encode(env) == (
        b'{"id":"00000000-0000-4000-8000-000000000001","type":"thing.happened","schema_version":1,'
        b'"occurred_at":"2026-01-02T03:04:05.000006Z","producer":"p","key":"k","correlation_id":null,'
        b'"data":{"n":1,"at":"2026-01-02T03:04:05.000006Z"}}')


def test_a_naive_time_is_refused_by_producer_and_decoder():
    r = reg()
    with pytest.raises(InvalidData):
        make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime(2026, 1, 1),
                      data={"n": 1}, reg=r)
    raw = (b'{"id":"00000000-0000-4000-8000-000000000001","type":"thing.happened","occurred_at":'
           b'"2026-01-01T00:00:00","producer":"p","key":"k","data":{"n":1}}')
    with pytest.raises(MalformedEnvelope, match="occurred_at"):
        decode(raw, r)


def test_data_is_validated_against_the_registered_model():
    with pytest.raises(InvalidData, match="invalid data for thing.happened v1"):
        make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                      data={"n": "many"}, reg=reg())
    with pytest.raises(InvalidData):  # a contract built with a wrong type is caught too
        make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                      data=Thing(n="many"), reg=reg())


def test_decoding_errors_carry_the_reason_a_consumer_parks_with():
    r = reg()
    good = make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                         data={"n": 1}, reg=r)
    with pytest.raises(MalformedEnvelope, match="^malformed envelope"):
        decode(b"{not json", r)
    with pytest.raises(UnknownEventType, match="unknown event type 'thing.happened' v2"):
        decode(encode(msgspec.structs.replace(good, schema_version=2)), r)
    with pytest.raises(InvalidData, match="^invalid data for thing.happened v1"):
        decode(encode(msgspec.structs.replace(good, data={"n": "x"})), r)
    # the head alone routes a message without decoding its data
    assert decode_head(encode(msgspec.structs.replace(good, data={"n": "x"}))).type == "thing.happened"


def test_unknown_type_or_version():
    r = reg()
    with pytest.raises(UnknownEventType):
        r.model_for("thing.happened", 2)
    with pytest.raises(UnknownEventType):
        r.topic_for("nothing")
    assert r.topic_for("thing.happened") == "things" and r.knows_type("thing.happened")


def test_registering_a_different_model_twice_is_an_error():
    r = reg()

    class Other(Contract, kw_only=True):
        m: int

    with pytest.raises(ValueError):
        r.register("thing.happened", topic="things")(Other)


def test_platform_contracts_are_registered_and_decode_older_layouts():
    import shared.contracts  # noqa: F401
    from shared.contracts.orders import ServiceOrderTransitioned
    from shared.contracts.vocabulary import Action, OrderState
    from shared.events import registry

    types = {t for t, _v, _topic in registry.types()}
    assert {"service_order.created", "service_order.transitioned", "sla.deadline_fired"} <= types
    # an event as the pydantic-era producers wrote it (times with +00:00, optional fields absent)
    raw = (b'{"id":"7b0b54a6-25b1-4a8f-9a49-2d5fef0b8a46","type":"service_order.transitioned","schema_version":1,'
           b'"occurred_at":"2026-11-10T03:00:00+00:00","producer":"orders","key":"o-1","correlation_id":null,'
           b'"data":{"order_id":"o-1","number":"N1","version":2,"action":"claim","from_state":"pending_claim",'
           b'"to_state":"pending_audit","actor_role":"merchant_staff","actor_id":"m-1.a",'
           b'"occurred_at":"2026-11-10T03:00:00Z","order":{"merchant_id":"m-1","customer_id":"c","customer_phone":'
           b'"13800000000","customer_level":"regular","sales_order_id":"so","sku":"s","category":"phones",'
           b'"quantity":1,"amount_paid":"199.00","service_type":"return","problem_type":"quality",'
           b'"created_at":"2026-11-10T02:00:00Z"},"details":{"handler_id":"m-1.a"}}}')
    env = decode(raw)
    data = env.data
    assert isinstance(data, ServiceOrderTransitioned)
    assert data.action is Action.CLAIM and data.action == "claim" and data.to_state is OrderState.PENDING_AUDIT
    assert data.order.amount_paid == Decimal("199.00") and data.order.mode == "pop_self_service"
    # an action the transition table does not know is refused (typed vocabulary)
    with pytest.raises(InvalidData, match="action"):
        decode(raw.replace(b'"action":"claim"', b'"action":"teleport"'))
    # amounts keep to two decimals and never go negative
    with pytest.raises(InvalidData, match="amount_paid"):
        decode(raw.replace(b'"199.00"', b'"-1.00"'))


def test_envelope_methods_use_the_codec():
    r = reg()
    env = make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                        data={"n": 2}, reg=r)
    assert env.to_bytes() == encode(env)
