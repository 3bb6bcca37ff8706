"""Structured JSON logs: timestamp, level, service, message, job_id, connection_id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleuve.masking import mask
from fleuve.private import private_file

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def scrub(text: str) -> str:
    """Mask values that look like credentials so they never reach a log."""
    return mask(text)


def _masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """A log record whose message and traceback carry no credential, whatever the handler."""
    record = _make_record(*args, **kwargs)
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # logging reports a bad format when it emits the record
        return record
    masked = mask(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        if mask(text) != text:
            # The formatted traceback replaces the exception, which would print it unmasked.
            record.exc_text, record.exc_info = mask(text), None
    return record


_make_record = logging.getLogRecordFactory()


def mask_all_records() -> None:
    """Mask every log record of the process, including libraries' (sqlglot prints the SQL)."""
    if logging.getLogRecordFactory() is not _masked_record:
        logging.setLogRecordFactory(_masked_record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the fields the log search indexes."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": getattr(
                record, "service", record.name.split(".")[1] if "." in record.name else record.name
            ),
            "message": scrub(record.getMessage()),
            "job_id": getattr(record, "job_id", None),
            "connection_id": getattr(record, "connection_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["error"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["error"] = scrub(record.exc_text)
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup(log_dir: Path | None = None, level: str = "INFO", stderr: bool = False) -> None:
    """Send Fleuve's logs as JSON lines to `log_dir/fleuve.log` (and stderr if asked)."""
    mask_all_records()
    root = logging.getLogger("fleuve")
    root.setLevel(level)
    # Replaces the handlers of an earlier setup only: a process's handler writing into the
    # lake stays when another project is opened in it.
    for handler in list(root.handlers):
        if getattr(handler, "fleuve_setup", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(private_file(log_dir / "fleuve.log"), encoding="utf-8"))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        handler.fleuve_setup = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = not handlers
