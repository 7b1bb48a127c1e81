from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import Envelope, EventRegistry, UnknownEventType, make_envelope


class Thing(BaseModel):
    n: int


def reg():
    r = EventRegistry()
    r.register("thing.happened", topic="things", version=1)(Thing)
    return r


def test_envelope_round_trip_keeps_every_field():
    env = make_envelope(type_="thing.happened", key="o-1", producer="p", occurred_at=datetime.now(timezone.utc),
                        data={"n": 3}, correlation_id="cid-1", reg=reg())
    back = Envelope.from_bytes(env.to_bytes())
    assert back == env
    assert back.schema_version == 1 and back.correlation_id == "cid-1" and back.data == {"n": 3}


def test_naive_time_is_refused():
    with pytest.raises(ValidationError):
        Envelope(type="x", occurred_at=datetime(2026, 1, 1), producer="p", key="k")


def test_data_is_validated_against_the_registered_model():
    with pytest.raises(ValidationError):
        make_envelope(type_="thing.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                      data={"n": "many"}, reg=reg())


def test_unknown_type_or_version():
    r = reg()
    with pytest.raises(UnknownEventType):
        r.model_for("thing.happened", 2)
    with pytest.raises(UnknownEventType):
        r.topic_for("nothing")
    assert r.topic_for("thing.happened") == "things"


def test_registering_a_different_model_twice_is_an_error():
    r = reg()

    class Other(BaseModel):
        m: int

    with pytest.raises(ValueError):
        r.register("thing.happened", topic="things")(Other)


def test_platform_contracts_are_registered():
    import shared.contracts  # noqa: F401
    from shared.events import registry

    types = {t for t, _v, _topic in registry.types()}
    assert {"service_order.created", "service_order.transitioned", "sla.deadline_fired"} <= types
