"""Event, order and timer ids are version 7 UUIDs: unique, and ordered by creation time, so
the indexes they key take new entries at their right edge (shared/ids.py)."""
import time
import uuid
from datetime import datetime, timezone

from shared.events import Contract, EventRegistry, make_envelope
from shared.ids import new_id, new_ids, new_uuid


def test_ids_are_version_7_and_follow_creation_time():
    first = new_ids(500)
    time.sleep(0.002)  # the next millisecond: the 48-bit timestamp prefix moves on
    later = [new_id() for _ in range(500)]
    assert len(set(first + later)) == 1000
    assert all(uuid.UUID(i).version == 7 for i in first + later)
    assert max(first) < min(later)  # as text too: what the databases sort
    assert new_uuid().version == 7


class X(Contract, kw_only=True):
    n: int


def test_an_event_gets_a_time_ordered_id_unless_given_one():
    reg = EventRegistry()
    reg.register("x.happened", topic="t")(X)
    env = make_envelope(type_="x.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                        data={"n": 1}, reg=reg)
    assert env.id.version == 7
    given = uuid.uuid4()
    assert make_envelope(type_="x.happened", key="k", producer="p", occurred_at=datetime.now(timezone.utc),
                         data={"n": 1}, reg=reg, event_id=given).id == given
