"""``platform-bus`` (``python -m shared.bus``, ``make bus ARGS=...``): look inside the event bus.

The embedded broker does not answer librdkafka clients (``kcat -b … -L`` fails at its
ApiVersionRequest), so operators get this instead; it speaks to Apache Kafka just the same,
with the services' TLS and SASL settings. Built on aiokafka's public admin and consumer API.

  platform-bus topics                      topics, partitions, messages held, newest message
  platform-bus groups [-g GROUP ...]       consumer groups: state, members, and per topic the
                                           committed offset, the end, the lag in messages and
                                           the age of the oldest unread message
  platform-bus tail TOPIC [-n N | --from-beginning] [--key K] [--type T] [-f]
                                           messages as pretty JSON (phones masked), filtered by
                                           key and event type (``service_order.*`` globs)

Connection: ``--bootstrap`` or, from the environment, the Kafka settings of the service named
by ``--env-prefix`` (default ``ORDERS_``: ``ORDERS_KAFKA_BOOTSTRAP``, ``..._SECURITY_PROTOCOL``,
``..._SASL_*``, ``..._SSL_*``), else the embedded broker of ``make run`` (127.0.0.1:19092).
Read-only: it joins no consumer group and commits nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.clock import BEIJING
from shared.kafka import KafkaConnection, kafka_options
from shared.masking import mask_payload

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
TIMEOUT_MS = 10_000


def connection_from_env(prefix: str, bootstrap: str | None = None, environ=os.environ) -> KafkaConnection:
    """The Kafka connection a service with this env prefix uses (``<PREFIX>KAFKA_<FIELD>``)."""
    values: dict = {}
    for f in fields(KafkaConnection):
        raw = environ.get(f"{prefix}KAFKA_{f.name.upper()}")
        if raw is not None:
            values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on") if f.type in (bool, "bool") else raw
    values.setdefault("bootstrap", DEFAULT_BOOTSTRAP)
    if bootstrap:
        values["bootstrap"] = bootstrap
    return KafkaConnection(**values)


class _Clients:
    """An admin client and a group-less consumer, started together."""

    def __init__(self, conn: KafkaConnection) -> None:
        self.conn = conn
        self.admin = AIOKafkaAdminClient(**kafka_options(conn), request_timeout_ms=TIMEOUT_MS)

    async def __aenter__(self) -> "_Clients":
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(**kafka_options(self.conn), enable_auto_commit=False,
                                         request_timeout_ms=TIMEOUT_MS)
        try:
            await self.consumer.start()
        except BaseException:
            await self.consumer.stop()
            await self.admin.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.admin.close()

    async def partitions(self, topics: list[str] | None = None) -> dict[str, list[TopicPartition]]:
        """topic → its partitions (every non-internal topic when ``topics`` is None). Only
        topics that exist are described: describing a missing one may create it."""
        existing = [t for t in await self.admin.list_topics() if not t.startswith("__")]
        topics = sorted(existing if topics is None else set(topics) & set(existing))
        out: dict[str, list[TopicPartition]] = {}
        for d in await self.admin.describe_topics(topics) if topics else []:
            if d["error_code"] == 0:
                out[d["topic"]] = sorted((TopicPartition(d["topic"], p["partition"]) for p in d["partitions"]),
                                         key=lambda tp: tp.partition)
        return dict(sorted(out.items()))

    async def first_timestamps(self, positions: dict[TopicPartition, int], wait_s: float = 2.0) -> dict:
        """The broker timestamp (seconds) of the message at each position (absent where none came)."""
        if not positions:
            return {}
        c = self.consumer
        c.assign(list(positions))
        for tp, offset in positions.items():
            c.seek(tp, offset)
        found: dict[TopicPartition, float] = {}
        deadline = time.monotonic() + wait_s
        while len(found) < len(positions) and time.monotonic() < deadline:
            got = await c.getmany(timeout_ms=200, max_records=len(positions) * 4)
            for tp, records in got.items():
                if tp not in found and records and records[0].timestamp and records[0].timestamp > 0:
                    found[tp] = records[0].timestamp / 1000
                    c.pause(tp)
        c.resume(*c.assignment())
        return found


# ------------------------------------------------------------------------------ topics

async def list_topics(conn: KafkaConnection) -> list[dict]:
    """[{topic, partitions, messages, newest}] (newest: the last message's broker time, ISO)."""
    async with _Clients(conn) as cl:
        parts = await cl.partitions()
        tps = [tp for ps in parts.values() for tp in ps]
        begin = await cl.consumer.beginning_offsets(tps) if tps else {}
        end = await cl.consumer.end_offsets(tps) if tps else {}
        newest = await cl.first_timestamps({tp: end[tp] - 1 for tp in tps if end[tp] > begin[tp]})
        rows = []
        for topic, ps in parts.items():
            stamps = [newest[tp] for tp in ps if tp in newest]
            rows.append({"topic": topic, "partitions": len(ps), "messages": sum(end[tp] - begin[tp] for tp in ps),
                         "newest": _iso(max(stamps)) if stamps else None})
        return rows


# ------------------------------------------------------------------------------ groups

async def list_groups(conn: KafkaConnection, only: list[str] | None = None, now: float | None = None) -> list[dict]:
    """[{group, state, members, topics: [{topic, committed, end, lag, oldest_unread_s}]}].

    A group's topics are those where it committed an offset on some partition; a partition of
    such a topic it never committed on counts from the topic's beginning."""
    async with _Clients(conn) as cl:
        listed = sorted({g for g, _ in await cl.admin.list_consumer_groups()})
        names = [g for g in listed if not only or g in only] + [g for g in (only or []) if g not in listed]
        parts = await cl.partitions()
        tps = [tp for ps in parts.values() for tp in ps]
        begin = await cl.consumer.beginning_offsets(tps) if tps else {}
        end = await cl.consumer.end_offsets(tps) if tps else {}
        described = {}
        if names:
            for resp in await cl.admin.describe_consumer_groups(names):
                for g in resp.groups:
                    described[g[1]] = {"state": g[2] or "Unknown", "members": len(g[5])}
        rows = []
        unread: dict[TopicPartition, int] = {}
        for group in names:
            # Explicit partitions: the embedded broker cannot answer "all of the group's offsets".
            offsets = await cl.admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta is not None and meta.offset >= 0}
            topics = []
            for topic in sorted({tp.topic for tp in committed}):
                positions = {tp: committed.get(tp, begin[tp]) for tp in parts.get(topic, [])}
                lag = {tp: max(0, end[tp] - pos) for tp, pos in positions.items()}
                unread.update({tp: pos for tp, pos in positions.items() if lag[tp] > 0})
                topics.append({"topic": topic, "committed": sum(positions.values()),
                               "end": sum(end[tp] for tp in positions), "lag": sum(lag.values()),
                               "_behind": {tp: pos for tp, pos in positions.items() if lag[tp] > 0}})
            rows.append({"group": group, **described.get(group, {"state": "Unknown", "members": 0}),
                         "topics": topics})
        stamps = await cl.first_timestamps(unread)
    now = time.time() if now is None else now
    for row in rows:
        for t in row["topics"]:
            behind = t.pop("_behind")
            oldest = [stamps[tp] for tp in behind if tp in stamps]
            t["oldest_unread_s"] = round(max(0.0, now - min(oldest)), 1) if oldest else (None if behind else 0.0)
    return rows


# ------------------------------------------------------------------------------ tail

@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: float | None
    key: str | None
    value: dict | str  # the envelope (JSON, phones masked), or the raw text of anything else

    @property
    def event_type(self) -> str | None:
        return self.value.get("type") if isinstance(self.value, dict) else None

    def as_dict(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                "time": _iso(self.timestamp), "key": self.key, "value": self.value}


def _message(record) -> Message:
    text = record.value.decode("utf-8", errors="replace") if record.value is not None else ""
    masked = mask_payload(text)
    try:
        value: dict | str = json.loads(masked)
    except ValueError:
        value = masked
    ts = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None
    key = record.key.decode("utf-8", errors="replace") if record.key is not None else None
    return Message(record.topic, record.partition, record.offset, ts, key, value)


def matches(m: Message, key: str | None, event_type: str | None) -> bool:
    if key is not None and m.key != key:
        return False
    if event_type is not None and not fnmatch.fnmatchcase(m.event_type or "", event_type):
        return False
    return True


async def tail(conn: KafkaConnection, topic: str, *, last: int | None = 10, key: str | None = None,
               event_type: str | None = None, follow: bool = False, idle_s: float = 1.0) -> AsyncIterator[Message]:
    """The topic's messages that match: the ``last`` of each partition (all with None), oldest
    first by broker time; with ``follow`` then every new one as it comes, until cancelled."""
    async with _Clients(conn) as cl:
        tps = (await cl.partitions([topic])).get(topic)
        if not tps:
            raise LookupError(f"no topic {topic!r}")
        c = cl.consumer
        c.assign(tps)
        begin, end = await c.beginning_offsets(tps), await c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, begin[tp] if last is None else max(begin[tp], end[tp] - last))
        # What is there now: fetched until every partition reached the end seen at the start.
        backlog: list[Message] = []
        deadline = time.monotonic() + max(idle_s, 5.0)
        while await _behind(c, end) and time.monotonic() < deadline:
            for records in (await c.getmany(timeout_ms=200)).values():
                backlog.extend(m for m in map(_message, records) if matches(m, key, event_type))
                deadline = time.monotonic() + max(idle_s, 5.0)
        backlog.sort(key=lambda m: (m.timestamp or 0, m.partition, m.offset))
        for m in backlog:
            yield m
        while follow:
            for records in (await c.getmany(timeout_ms=500)).values():
                for m in map(_message, records):
                    if matches(m, key, event_type):
                        yield m


async def _behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return True
    return False


# ------------------------------------------------------------------------------ output

def _iso(ts: float | None) -> str | None:
    """Broker time in Beijing time (how the platform shows times)."""
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).astimezone(BEIJING).isoformat(
        timespec="milliseconds")


def _table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells)


def format_topics(rows: list[dict]) -> str:
    return _table([[r["topic"], r["partitions"], r["messages"], r["newest"] or "-"] for r in rows],
                  ["TOPIC", "PARTITIONS", "MESSAGES", "NEWEST (Beijing time)"])


def format_groups(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        if not r["topics"]:
            lines.append([r["group"], r["state"], r["members"], "-", "-", "-", "-", "-"])
        for t in r["topics"]:
            age = "-" if t["oldest_unread_s"] is None else f'{t["oldest_unread_s"]:g}'
            lines.append([r["group"], r["state"], r["members"], t["topic"], t["committed"], t["end"], t["lag"], age])
    return _table(lines, ["GROUP", "STATE", "MEMBERS", "TOPIC", "COMMITTED", "END", "LAG", "OLDEST UNREAD (s)"])


def format_message(m: Message, compact: bool = False) -> str:
    if compact:
        return json.dumps(m.as_dict(), ensure_ascii=False, separators=(",", ":"))
    head = f"── {m.topic} p{m.partition} @{m.offset}  {_iso(m.timestamp) or '-'}  key={m.key}"
    if m.event_type:
        head += f"  {m.event_type}"
    body = json.dumps(m.value, ensure_ascii=False, indent=2) if isinstance(m.value, dict) else m.value
    return f"{head}\n{body}"


# ------------------------------------------------------------------------------ command line

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="platform-bus", description="Look inside the platform's event bus "
                                "(topics, consumer groups and their lag, messages as JSON).")
    p.add_argument("--bootstrap", help=f"host:port of a broker (default: <PREFIX>KAFKA_BOOTSTRAP, else "
                                       f"{DEFAULT_BOOTSTRAP})")
    p.add_argument("--env-prefix", default="ORDERS_",
                   help="read the Kafka settings (TLS, SASL) of this service's environment (default ORDERS_)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("topics", help="topics with partitions, messages held and the newest message's time")
    g = sub.add_parser("groups", help="consumer groups with their committed offsets and lag per topic")
    g.add_argument("-g", "--group", action="append", help="only this group (repeatable)")
    t = sub.add_parser("tail", help="a topic's messages as pretty JSON, phones masked")
    t.add_argument("topic")
    where = t.add_mutually_exclusive_group()
    where.add_argument("-n", "--last", type=int, default=10, help="the last N messages of each partition (default 10)")
    where.add_argument("--from-beginning", action="store_true", help="every message the topic holds")
    t.add_argument("--key", help="only messages with this key (a service order id, a merchant id...)")
    t.add_argument("--type", dest="event_type", help="only this event type; globs work: 'service_order.*'")
    t.add_argument("-f", "--follow", action="store_true", help="then keep printing new messages (Ctrl-C stops)")
    t.add_argument("--compact", action="store_true", help="one JSON object per line (for jq)")
    for s in (g, sub.choices["topics"]):
        s.add_argument("--json", action="store_true", help="JSON instead of a table")
    return p


async def _run(args) -> int:
    conn = connection_from_env(args.env_prefix, args.bootstrap)
    if args.command == "topics":
        rows = await list_topics(conn)
        print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else format_topics(rows))
    elif args.command == "groups":
        rows = await list_groups(conn, args.group)
        print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else format_groups(rows))
    else:
        async for m in tail(conn, args.topic, last=None if args.from_beginning else args.last, key=args.key,
                            event_type=args.event_type, follow=args.follow):
            print(format_message(m, args.compact), flush=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a failure is told in one line below
    try:
        code = asyncio.run(_run(args))
    except KeyboardInterrupt:
        code = 0
    except LookupError as exc:
        print(f"platform-bus: {exc.args[0]}", file=sys.stderr)
        code = 2
    except Exception as exc:  # noqa: BLE001 - the broker unreachable, refused...: one line, no traceback
        print(f"platform-bus: {connection_from_env(args.env_prefix, args.bootstrap).bootstrap}: {exc!r}",
              file=sys.stderr)
        code = 2
    finally:
        quiet.setLevel(level)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
