"""The lake tables a schedule reads, from dbt's manifest: what `on_new_data` watches.

A dbt selection reads the parents of its models that it does not build itself (bronze sources,
or models of an earlier layer). Selections are matched as dbt matches them: a model's name, a
folder or dotted path of its fqn, `tag:`, `path:`, `fqn:`, with `+` before or after for its
ancestors or descendants; several in one string (space-separated) are a union.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from fleuve.errors import ConfigError

METHODS = ("tag", "path", "fqn")


def selected(manifest: dict[str, Any], selectors: tuple[str, ...], where: str) -> set[str]:
    """The unique ids of the models a dbt selection names."""
    models = {
        uid: node
        for uid, node in manifest.get("nodes", {}).items()
        if node["resource_type"] == "model"
    }
    parents = {
        uid: set(node["depends_on"]["nodes"]) & models.keys() for uid, node in models.items()
    }
    children: dict[str, set[str]] = {uid: set() for uid in models}
    for uid, ups in parents.items():
        for up in ups:
            children[up].add(uid)
    out: set[str] = set()
    for selector in (word for text in selectors for word in text.split()):
        up, down = selector.startswith("+"), selector.endswith("+")
        core = selector.strip("+")
        hits = {uid for uid, node in models.items() if _matches(node, core, where)}
        if up:
            hits |= _walk(hits, parents)
        if down:
            hits |= _walk(hits, children)
        out |= hits
    return out


def _matches(node: dict[str, Any], selector: str, where: str) -> bool:
    method, _, value = selector.rpartition(":")
    fqn = node.get("fqn") or []
    if method == "tag":
        return value in (node.get("tags") or [])
    if method == "path":
        path = PurePosixPath(node.get("original_file_path") or "")
        wanted = PurePosixPath(value)
        return path == wanted or wanted in path.parents
    if method in ("", "fqn"):
        parts = value.split(".")
        if value == node.get("name") or fqn[: len(parts)] == parts:
            return True
        return fqn[1 : 1 + len(parts)] == parts
    raise ConfigError(
        f"{where}: on_new_data cannot tell which tables the selection {selector!r} reads",
        f"select by model name, folder, {', '.join(m + ':' for m in METHODS)} (with + for "
        "ancestors or descendants), or drop on_new_data and give the schedule a time",
    )


def _walk(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def read_tables(
    manifest: dict[str, Any], selectors: tuple[str, ...], where: str
) -> frozenset[tuple[str, str]]:
    """The (schema, table) pairs, lowercased, that the selected models read and do not build."""
    chosen = selected(manifest, selectors, where)
    if not chosen:
        raise ConfigError(
            f"{where}: the selection {' '.join(selectors)!r} names no dbt model, so on_new_data "
            "would never start it",
            "select the dbt project's models by name, folder or tag:, or drop on_new_data",
        )
    nodes = manifest.get("nodes", {})
    sources = manifest.get("sources", {})
    out: set[tuple[str, str]] = set()
    for uid in chosen:
        for dep in nodes[uid]["depends_on"]["nodes"]:
            if dep in chosen:
                continue
            node = sources.get(dep) or nodes.get(dep)
            if node is None:
                continue
            table = node.get("identifier") or node.get("alias") or node["name"]
            out.add((str(node["schema"]).lower(), str(table).lower()))
    return frozenset(out)
