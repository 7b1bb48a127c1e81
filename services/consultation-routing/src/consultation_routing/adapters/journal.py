"""The decision journal: an append-only log of routing decisions on the routing host's
disk, written and fsynced by the service in batches (group commit), drained into the
outbox by the decision writer process.

Files in one directory per service instance (``JOURNAL_DIR``):

- ``segment-<n>.log``: frames of decision records, each frame a 4-byte big-endian length
  and a JSON array of (decision record, manufacturer package) pairs (``msgspec``, decoded
  against ``FRAME``: a frame that does not match it is skipped; times keep their offset).
  The service appends to the newest segment only and starts a new one past ``SEGMENT_BYTES``.
- ``segment-<n>.pos``: how far the writer has drained that segment (byte offset), written
  after the outbox transaction that holds those decisions commits. A crash between the
  two drains the same frames again; their events have deterministic ids, so consumers'
  inboxes apply them once.
- ``service.lock`` / ``writer.lock``: ``flock`` locks — one service instance appends to a
  journal directory, one writer drains it.

Drained segments other than the newest are deleted. A frame cut short by a crash (the
tail after the last fsync) is ignored, and the segment is closed: the next append goes to
a new segment, so nothing is ever written after a torn frame."""
from __future__ import annotations

import fcntl
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterator

import msgspec

FRAME_HEAD = 4
SEGMENT_BYTES = 64 << 20
_SEGMENT = re.compile(r"segment-(\d{12})\.log$")
# One decision (``publisher.decision_record``): at, channel, entry point, phase, sku, customer,
# sales order, service order, decision id, target, reason, manufacturer, category, queue,
# billable; then the manufacturer's package (None when unknown).
Opt = str | None
RECORD = tuple[datetime, str, str, str, Opt, Opt, Opt, Opt, str, str, str, Opt, Opt, Opt, bool]
FRAME = list[tuple[RECORD, int | None]]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(FRAME).decode


class JournalLocked(RuntimeError):
    """Another process holds this journal directory."""


def _lock(path: Path, blocking: bool):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(f"{path} is held by another process") from None
    return fd


def segments(directory: Path) -> list[tuple[int, Path]]:
    out = []
    for p in directory.glob("segment-*.log"):
        m = _SEGMENT.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _segment_path(directory: Path, n: int) -> Path:
    return directory / f"segment-{n:012d}.log"


def read_position(segment: Path) -> int:
    try:
        return int(segment.with_suffix(".pos").read_text() or 0)
    except (OSError, ValueError):
        return 0


def write_position(segment: Path, offset: int) -> None:
    tmp = segment.with_suffix(".pos.tmp")
    tmp.write_text(str(offset))
    os.replace(tmp, segment.with_suffix(".pos"))


def read_frames(segment: Path, start: int) -> Iterator[tuple[int, list]]:
    """(end offset, records) of each whole frame from ``start``; stops at a torn frame."""
    with open(segment, "rb") as f:
        f.seek(start)
        pos = start
        while True:
            head = f.read(FRAME_HEAD)
            if len(head) < FRAME_HEAD:
                return
            n = int.from_bytes(head, "big")
            body = f.read(n)
            if len(body) < n:
                return
            pos += FRAME_HEAD + n
            try:
                records = _decode(body)
            except msgspec.DecodeError:  # a damaged frame: skipped, never fatal
                continue
            yield pos, records


class Journal:
    """The service's side: append frames, fsync them (``sync``, blocking: run it in a thread)."""

    def __init__(self, directory: str | Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._n = 0
        self._size = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.directory / "service.lock", blocking=False)
        existing = segments(self.directory)
        # always a fresh segment: a torn tail of the last one (crash) is never appended to
        self._n = existing[-1][0] + 1 if existing else 1
        self._start_segment()

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def _start_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        path = _segment_path(self.directory, self._n)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        dir_fd = os.open(self.directory, os.O_RDONLY)  # the new file's name is durable too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def append(self, records: list) -> None:
        if self._fd is None:
            self.open()
        if self._size >= self.segment_bytes:
            self._n += 1
            self._start_segment()
        payload = _encode(records)
        frame = len(payload).to_bytes(FRAME_HEAD, "big") + payload
        os.write(self._fd, frame)
        self._size += len(frame)

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class Drainer:
    """The writer's side: the records not yet drained, segment by segment, in order."""

    def __init__(self, directory: str | Path, *, blocking_lock: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.directory / "writer.lock", blocking=blocking_lock)

    def pending(self, max_records: int) -> tuple[list, list[tuple[Path, int]]]:
        """Up to about ``max_records`` records not yet drained, and the (segment, offset)
        positions to record once they are committed."""
        records: list = []
        positions: list[tuple[Path, int]] = []
        segs = segments(self.directory)
        for i, (_n, seg) in enumerate(segs):
            start = read_position(seg)
            end = start
            for end, frame in read_frames(seg, start):
                records.extend(frame)
                if len(records) >= max_records:
                    break
            else:
                if i < len(segs) - 1:
                    # the service moved on from this segment: a torn tail left by a crash is
                    # garbage (its decisions were never acknowledged as durable)
                    end = max(end, seg.stat().st_size)
            if end != start:
                positions.append((seg, end))
            if len(records) >= max_records:
                break
        return records, positions

    def committed(self, positions: list[tuple[Path, int]]) -> None:
        for seg, offset in positions:
            write_position(seg, offset)
        self._collect()

    def _collect(self) -> None:
        """Delete drained segments the service no longer appends to (all but the newest)."""
        segs = segments(self.directory)
        for _n, seg in segs[:-1]:
            if read_position(seg) >= seg.stat().st_size:
                seg.unlink(missing_ok=True)
                seg.with_suffix(".pos").unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
