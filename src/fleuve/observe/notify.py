"""Alert notifications: webhooks (Fleuve's JSON, Slack's `{"text"}`, Teams' MessageCard) and
email by SMTP, retried with backoff; a failure is returned to be recorded, never raised."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx

from fleuve import __version__
from fleuve.config import AlertChannel
from fleuve.logs.local import scrub

log = logging.getLogger("fleuve.observe")
BACKOFF_SECONDS = 1.0
_COLORS = {"firing": {"critical": "D93F0B", "warning": "FBCA04", "info": "0E8A16"}}
_RESOLVED_COLOR = "2EB886"


@dataclass
class Message:
    """What a notification says: which alert, on what, fired or resolved, when and why."""

    project: str
    rule: str
    kind: str
    subject: str
    state: str  # firing or resolved
    severity: str
    summary: str
    description: str | None
    at: datetime

    @property
    def title(self) -> str:
        """'[FIRING] sync_failures shop_db', the line a chat or a mailbox shows."""
        subject = f" {self.subject}" if self.subject else ""
        return f"[{self.state.upper()}] {self.rule}{subject} ({self.project})"

    def text(self) -> str:
        """The notification as plain text."""
        lines = [self.title, self.summary]
        if self.description:
            lines.append(self.description)
        lines.append(f"severity: {self.severity} · at {self.at.isoformat(timespec='seconds')}")
        return "\n".join(lines)

    def document(self) -> dict[str, Any]:
        """Fleuve's JSON alert document (the `json` webhook format)."""
        return {
            "version": "1",
            "source": f"fleuve {__version__}",
            "project": self.project,
            "status": self.state,
            "rule": self.rule,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "at": self.at.isoformat(),
        }

    def slack(self) -> dict[str, Any]:
        """A Slack incoming webhook's payload (also read by Mattermost and Rocket.Chat)."""
        return {"text": self.text()}

    def teams(self) -> dict[str, Any]:
        """A Microsoft Teams connector's MessageCard."""
        color = _RESOLVED_COLOR if self.state == "resolved" else _COLORS["firing"][self.severity]
        facts = [
            {"name": "Rule", "value": self.rule},
            {"name": "Subject", "value": self.subject or "platform"},
            {"name": "Severity", "value": self.severity},
            {"name": "At", "value": self.at.isoformat(timespec="seconds")},
        ]
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "themeColor": color,
            "summary": self.title,
            "title": self.title,
            "sections": [
                {"activityTitle": self.summary, "text": self.description or "", "facts": facts}
            ],
        }


def deliver(
    channel: AlertChannel, message: Message, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Send `message` through `channel`, retrying with a doubling wait; how it went."""
    send = _post if channel.type == "webhook" else _mail
    error = ""
    for attempt in range(1, channel.retries + 2):
        try:
            send(channel, message)
            return {"status": "sent", "attempts": attempt}
        except Exception as exc:
            error = _explain(channel, exc)
            log.warning(
                "alert notification failed",
                extra={"channel": channel.name, "attempt": attempt, "error": error},
            )
        if attempt <= channel.retries:
            sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    return {"status": "failed", "attempts": channel.retries + 1, "error": error}


def _post(channel: AlertChannel, message: Message) -> None:
    assert channel.url is not None  # checked by the configuration
    body = {"json": message.document, "slack": message.slack, "teams": message.teams}[
        channel.format
    ]()
    response = httpx.post(
        channel.url.get_secret_value(),
        json=body,
        headers={"User-Agent": f"fleuve/{__version__}", **channel.headers},
        timeout=channel.timeout_seconds,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"the webhook answered HTTP {response.status_code}")


def _mail(channel: AlertChannel, message: Message) -> None:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = channel.from_
    mail["To"] = ", ".join(channel.to)
    mail.set_content(message.text())
    assert channel.host is not None  # checked by the configuration
    with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
        if channel.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if channel.user:
            password = channel.password.get_secret_value() if channel.password else ""
            smtp.login(channel.user, password)
        smtp.send_message(mail)


def _explain(channel: AlertChannel, exc: Exception) -> str:
    """The failure on one line, with the channel's URL and password left out."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    for secret in (channel.url, channel.password):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "***")
    return scrub(text)
