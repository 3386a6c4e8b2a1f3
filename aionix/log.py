"""Logging: one handler on stderr, text or JSON lines, and a redaction filter that replaces
every registered sensitive value (secrets resolved at run time, API keys) with `***` in any
record, as a second line of defence behind keeping them out by construction."""

from __future__ import annotations

import json
import logging
import sys
import time

from aionix.iam.audit import PII
from aionix.redact import PROCESS, REDACTED
from aionix.telemetry import current_trace

__all__ = ["REDACTED", "Redactor", "redactor", "setup"]


class Redactor(logging.Filter):
    """Replaces every value resolved in this process (`aionix.redact.PROCESS`, with its
    encoded forms) in log messages; values shorter than 4 characters are not registered (they
    would redact ordinary words)."""

    def add(self, value: str) -> None:
        PROCESS.add(value)

    def redact(self, text: str) -> str:
        return PROCESS.text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if PROCESS:
            message = record.getMessage()
            record.msg = self.redact(message)
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        if PII.enabled:  # emails, card and phone numbers ([audit] pii_patterns), before it is written
            message = record.getMessage()
            masked = PII.mask(message)
            if masked is not message:
                record.msg, record.args = masked, None
        return True


redactor = Redactor()


class TraceFilter(logging.Filter):
    """Adds the trace id of the request, execution, invocation or delivery being served
    (`aionix.telemetry.current_trace`) to the record: `trace_id` (None outside any) and
    `trace` (` [<id>]`, or empty, for the text format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = current_trace.get()
        record.trace_id = trace_id
        record.trace = f" [{trace_id}]" if trace_id else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            out["trace_id"] = trace_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(redactor)
    handler.addFilter(TraceFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s%(trace)s: %(message)s")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
