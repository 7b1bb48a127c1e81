"""Logs carrying the correlation id of the request or event in hand: JSON lines, or short
human lines on a terminal (``configure_logging``)."""
from __future__ import annotations

import logging
import os
import random
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def new_correlation_id() -> str:
    """128 random bits as 32 hex digits (also the routing fast path's ids). Not a uuid4():
    ten times the cost on every request; a correlation id needs to be unique, nothing more."""
    return "%032x" % random.getrandbits(128)


def set_correlation_id(value: str | None) -> object:
    return _correlation_id.set(value or new_correlation_id())


def reset_correlation_id(token: object) -> None:
    _correlation_id.reset(token)  # type: ignore[arg-type]


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = _correlation_id.get()
        return True


# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is shown.
# (``color_message``: uvicorn's coloured copy of the message, for its own formatter.)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "service", "correlation_id", "taskName", "color_message"}
_COLOURS = {"DEBUG": "\x1b[2m", "INFO": "\x1b[32m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m",
            "CRITICAL": "\x1b[1;31m"}


class TerminalFormatter(logging.Formatter):
    """One short line per record for a person at a terminal: local time, service, level,
    message, the ``extra=`` fields as key=value, the correlation id; tracebacks below it.
    Colours for the level unless ``colour`` is off (NO_COLOR, or not a terminal)."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        t = self.formatTime(record, "%H:%M:%S") + f".{int(record.msecs):03d}"
        level = f"{record.levelname:<7}"
        if self.colour and record.levelname in _COLOURS:
            level = f"{_COLOURS[record.levelname]}{level}\x1b[0m"
        extras = "".join(f" {k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        cid = getattr(record, "correlation_id", None)
        line = f"{t} {getattr(record, 'service', '-'):<20} {level} {record.getMessage()}{extras}"
        if cid:
            line += f"  cid={cid}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def configure_logging(service: str, level: str = "INFO", json_output: bool | None = None, *,
                      production: bool = False, stream=None) -> None:
    """Logs to stderr: one JSON object per line, or, when ``json_output`` is None (the
    setting LOG_JSON unset) and stderr is a terminal outside production, short human lines
    (:class:`TerminalFormatter`). ``json_output`` True or False forces one or the other."""
    stream = stream if stream is not None else sys.stderr
    terminal = _is_terminal(stream)
    if json_output is None:
        json_output = production or not terminal
    handler = logging.StreamHandler(stream)
    if json_output:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TerminalFormatter(colour=terminal and not os.environ.get("NO_COLOR")))
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka is chatty about reconnects while the broker is down; keep its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
