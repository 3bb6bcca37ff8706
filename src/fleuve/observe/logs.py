"""Structured JSON logs: timestamp, level, service, message, job_id, connection_id."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SECRETS = re.compile(
    r"((?:password|secret|token|authorization|key_id|api_key)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """Mask values that look like credentials so they never reach a log."""
    text = re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", text)
    return _SECRETS.sub(r"\1***", text)


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
        return json.dumps(doc, default=str, ensure_ascii=False)


def setup(log_dir: Path | None = None, level: str = "INFO", stderr: bool = False) -> None:
    """Send Fleuve's logs as JSON lines to `log_dir/fleuve.log` (and stderr if asked)."""
    root = logging.getLogger("fleuve")
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / "fleuve.log", encoding="utf-8"))
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.propagate = not handlers
