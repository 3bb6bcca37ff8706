"""Features outside the core, named here by module path and imported only when used.

The core never imports them: `fleuve lake tables`, or any command on a project without a
`demo:` section, leaves the demo unloaded. A feature adds an entry here and owns the code
the entry points to.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from fleuve.config import Settings

# `fleuve` commands that live with their feature: command name -> "module:attribute".
COMMANDS: dict[str, str] = {"demo": "fleuve.demo.command:demo"}

# Services a project's sources need on this machine while they are read, keyed by the
# settings section that asks for them: each is a context manager taking the settings.
SOURCE_SERVICES: dict[str, str] = {"demo": "fleuve.demo:demo_sources"}


def load(target: str) -> Any:
    """The object a "module:attribute" entry names, importing its module."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@contextmanager
def source_services(settings: Settings) -> Iterator[None]:
    """Run the local services the project's sources need (most projects need none)."""
    with ExitStack() as stack:
        for section, target in SOURCE_SERVICES.items():
            if getattr(settings, section, None) is not None:
                stack.enter_context(load(target)(settings))
        yield
