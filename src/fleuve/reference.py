"""References generated from the code: every setting from the configuration's schema, every
command from its `--help`.

`python -m fleuve.reference` (or `make docs`) writes `docs/settings.md` and `docs/cli.md`;
`tests/test_reference.py` fails when the committed files differ from what this module
generates, so the references cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import click
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from fleuve import config, triggers

SETTINGS_FILE = "docs/settings.md"
CLI_FILE = "docs/cli.md"
REGENERATE = "make docs"
WIDTH = 100

# What each key of a connection's `source` (and of the mappings nested in it) means. Keys live
# in fleuve.config as tuples; a key without a line here stops the generation, so that a new
# source key cannot go undocumented.
SOURCE_KEYS: dict[str, str] = {
    "dsn": "a connection URL, e.g. `postgresql://reader:${PASSWORD}@db:5432/shop`",
    "host": "the server's host name (instead of `dsn`)",
    "port": "the server's port",
    "database": "the database to read",
    "user": "the user to connect as",
    "password": "the password; write `${VAR}` to read it from the environment",
    "schema": "limits discovery to this schema (PostgreSQL: the default schema of tables)",
    "slot": "PostgreSQL, `sync_mode: cdc`: the logical replication slot read (default "
    "`fleuve_<connection>`, created by Fleuve)",
    "publication": "PostgreSQL, `sync_mode: cdc`: the publication read (default "
    "`fleuve_<connection>`, created by Fleuve)",
    "server_id": "MySQL/MariaDB, `sync_mode: cdc`: the replica server id the binary log is read as",
    "path": "sqlite: the database file; files: a local folder or `s3://bucket/prefix`",
    "s3": "files in a bucket: the bucket's endpoint and credentials (keys below)",
    "format": "`csv`, `tsv`, `json`, `jsonl` or `parquet` (default: from the file extension)",
    "delimiter": "CSV: the field delimiter (default: detected)",
    "header": "CSV: `true` when the first line names the columns (default: detected)",
    "quote": "CSV: the quote character",
    "encoding": "CSV: the encoding (default: detected per file, UTF-8 or Latin-1)",
    "max_line_size": "CSV: longest line in bytes (default 2097152, at least 1024)",
    "url": "the API's base URL",
    "auth": "`{type: bearer, token}`, `{type: basic, username, password}` or "
    "`{type: api_key, name, value, in: header|query}`",
    "api_key": "short for an `X-API-Key` header holding this key",
    "api_key_header": "the header `api_key` is sent in (default `X-API-Key`)",
    "headers": "extra request headers",
    "timeout_seconds": "seconds to wait for an answer (default 30)",
    "http_retries": "retries of 429 and 5xx answers (default 5)",
    "max_retry_after_seconds": "longest `Retry-After` honoured, in seconds (default 60)",
    "method": "`GET` (default) or `POST` (parameters then go in the JSON body)",
    "params": "fixed query parameters",
    "body": "fixed POST body",
    "cursor_param": "incremental: the query parameter receiving the last cursor value",
    "pagination": "how pages are followed (keys below; default `{type: none}`)",
    "records_path": "where the records are in an answer, e.g. `results.items` (default `data`); "
    "`''` for a top-level list",
    "types": "column types, e.g. `{amount: 'DECIMAL(12,2)'}`; a value that does not fit sends "
    "its row to `bronze._rejected`",
}
NESTED_KEYS: dict[str, dict[str, str]] = {
    "s3": {
        "endpoint": "host:port of an S3-compatible server such as MinIO; empty for AWS",
        "region": "the bucket's region",
        "access_key_id": "access key id",
        "secret_access_key": "secret key; write `${VAR}`",
        "url_style": "`path` (MinIO) or `vhost` (AWS)",
        "use_ssl": "`true` for https, `false` for plain http",
    },
    "auth": {
        "type": "`bearer`, `basic` or `api_key`",
        "token": "bearer: the token",
        "username": "basic: the user name",
        "password": "basic: the password",
        "name": "api_key: the header or query parameter's name",
        "value": "api_key: the key",
        "in": "api_key: `header` or `query`",
    },
    "pagination": {
        "type": "`none`, `page`, `offset`, `cursor`, `next_link` or `link_header`",
        "page_param": "page: the page number's parameter (default `page`)",
        "size_param": "page: the page size's parameter (default `per_page`)",
        "size": "page, offset: records per page (default 100)",
        "start": "page: the first page's number (default 1)",
        "offset_param": "offset: the offset's parameter (default `offset`)",
        "limit_param": "offset: the page size's parameter (default `limit`)",
        "cursor_param": "cursor: the parameter receiving the next cursor (default `cursor`)",
        "cursor_path": "cursor: where the next cursor is in an answer (default `next_cursor`)",
        "next_path": "next_link: where the next page's URL is in an answer (default `next`)",
    },
}


# -- settings -----------------------------------------------------------------------------


def settings_markdown() -> str:
    """The settings reference: every key of fleuve.yml, its type, default and meaning."""
    out = [
        "# Settings reference",
        "",
        _generated_note("the configuration's schema (`fleuve.config`)"),
        "",
        "Settings come from `fleuve.yml` in the project folder, overridden by environment",
        "variables, overridden by `--set` flags:",
        "",
        "```sh",
        "fleuve config show                               # the effective settings, secrets masked",
        "FLEUVE_SERVER__HTTP_PORT=9100 fleuve serve       # FLEUVE_<SECTION>__<KEY>",
        "fleuve --set server.http_port=9100 serve         # --set <section>.<key>=<value>",
        "```",
        "",
        "Values given in the environment or with `--set` are read as YAML scalars (`9100` is a",
        "number, `true` a boolean). Any string in `fleuve.yml` may hold `${VAR}` or",
        "`${VAR:-default}`, replaced by the environment variable: write secrets that way. In a",
        "connection's `source` and stream `options` an unset variable is only an error when the",
        "connection is used; elsewhere it stops Fleuve at start-up. Every key is checked: an",
        "unknown one is an error naming it and the closest known key.",
        "",
        "Relative paths are read from the project folder.",
        "",
    ]
    sections = _sections(config.Settings, "")
    out += ["## Contents", ""]
    out += [f"- [`{title}`](#{_anchor(title)})" for title, _, _ in sections[1:]]
    out += [
        "- [Connection sources](#connection-sources)",
        "- [Schedule spellings](#schedule-spellings)",
    ]
    out.append("")
    for title, model, prefix in sections:
        out += _section_markdown(title, model, prefix)
    out += _sources_markdown()
    out += _schedules_markdown()
    return "\n".join(out).rstrip("\n") + "\n"


def _sections(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel], str]]:
    """(title, model, key prefix) of `model` and of every section nested in it, depth first."""
    title = prefix.rstrip(".") or "top level"
    found = [(title, model, prefix)]
    for name, field in _fields(model):
        inner = config._inner_model(field.annotation)
        if inner is not None:
            many = get_origin(field.annotation) is list
            found += _sections(inner, f"{prefix}{name}{'[]' if many else ''}.")
    return found


def _fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The fields a user writes: all but the project folder, which Fleuve sets itself."""
    return [
        (n, f)
        for n, f in model.model_fields.items()
        if not (model is config.Settings and n == "project_dir")
    ]


def _section_markdown(title: str, model: type[BaseModel], prefix: str) -> list[str]:
    """A heading, the section's docstring and a table of its keys."""
    heading = f"## `{title}`" if prefix else "## Top level"
    doc = " ".join((model.__doc__ or "").split())
    out = [heading, "", doc, ""] if doc else [heading, ""]
    if prefix.endswith("[]."):
        out += [f"`{prefix[:-3]}` is a list; each item has these keys.", ""]
    elif prefix and "[]" not in prefix:
        env = "FLEUVE_" + prefix.rstrip(".").upper().replace(".", "__")
        out += [f"From the environment: `{env}__<KEY>`.", ""]
    out += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in _fields(model):
        out.append(
            f"| `{field.alias or name}` | {_type(field)} | {_default(field, prefix + name)} | "
            f"{_cell(_description(model, name, field, prefix + name))} |"
        )
    out.append("")
    return out


def _description(model: type[BaseModel], name: str, field: FieldInfo, key: str) -> str:
    """The field's description, or the docstring of the section it holds."""
    if field.description:
        return field.description
    inner = config._inner_model(field.annotation)
    if inner is not None and inner.__doc__:
        many = get_origin(field.annotation) is list
        doc = " ".join(inner.__doc__.split()).rstrip(".")
        return (
            f"{'a list, each item: ' if many else ''}{doc} ([keys](#{_anchor(key + many * '[]')}))"
        )
    raise ValueError(f"{model.__name__}.{name} has no description; add one in fleuve.config")


def _type(field: FieldInfo) -> str:
    """The field's type in words, with its allowed values or range."""
    words = _type_words(field.annotation)
    bounds = []
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            bounds.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            bounds.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            bounds.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            bounds.append(f"< {item.lt}")
    return words + (f", {' and '.join(bounds)}" if bounds else "")


def _type_words(annotation: Any) -> str:
    """'integer', 'string or null', "one of `a`, `b`", 'list of strings', ..."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(annotation))
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        return " or ".join(_type_words(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else ""
        )
    if origin is list:
        (inner,) = get_args(annotation)
        if config._inner_model(inner):
            return "list of sections"
        if get_origin(inner) is Literal:
            return "list of " + ", ".join(f"`{v}`" for v in get_args(inner))
        return f"list of {_type_words(inner)}s"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if annotation is SecretStr:
        return "string (secret)"
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo, key: str) -> str:
    """The default as written in fleuve.yml, or 'required'."""
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return f"[below](#{_anchor(key)})"
        return f"`{_yaml(value)}`"
    if field.default is None:
        return "none"
    return f"`{_yaml(field.default)}`"


def _yaml(value: Any) -> str:
    """A default spelled as YAML would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value)


def _sources_markdown() -> list[str]:
    """Each kind of source with the keys of its `source` and of its streams' `options`."""
    aliases: dict[str, list[str]] = {}
    for alias, kind in config._SOURCE_ALIASES.items():
        aliases.setdefault(kind, []).append(alias)
    out = [
        "## Connection sources",
        "",
        "A connection's `source` has a `type` and that type's keys; each stream may set the keys",
        "listed as stream options under `options:`. Sources are described in",
        "[ingestion](ingestion.md#sources).",
        "",
        "| `type` | also written | `source` keys | stream `options` keys |",
        "|---|---|---|---|",
    ]
    for kind, keys in config._SOURCE_KEYS.items():
        also = ", ".join(f"`{a}`" for a in aliases.get(kind, [])) or "—"
        src = ", ".join(f"`{k}`" for k in keys)
        opts = ", ".join(f"`{k}`" for k in config._OPTION_KEYS[kind])
        out.append(f"| `{kind}` | {also} | {src} | {opts} |")
    out += ["", "### Source keys", "", "| key | meaning |", "|---|---|"]
    used = sorted(
        {k for ks in (*config._SOURCE_KEYS.values(), *config._OPTION_KEYS.values()) for k in ks}
    )
    for key in used:
        out.append(f"| `{key}` | {_cell(_source_help(key))} |")
    out.append("")
    for parent, keys in config._NESTED_KEYS.items():
        out += [f"### `{parent}` keys", "", "| key | meaning |", "|---|---|"]
        for key in keys:
            help_ = NESTED_KEYS.get(parent, {}).get(key)
            if help_ is None:
                raise ValueError(f"{parent}.{key} has no description in fleuve.reference")
            out.append(f"| `{key}` | {_cell(help_)} |")
        out.append("")
    out += [
        "Settings copied from Airbyte-style configurations that Fleuve does not take are",
        "refused with the reason:",
        "",
        "| key | why | instead |",
        "|---|---|---|",
    ]
    for key, (why, fix) in config._REFUSED.items():
        out.append(f"| `{key}` | {_cell(why)} | {_cell(fix)} |")
    out.append("")
    return out


def _source_help(key: str) -> str:
    if key not in SOURCE_KEYS:
        raise ValueError(f"source key {key!r} has no description in fleuve.reference")
    return SOURCE_KEYS[key]


def _schedules_markdown() -> list[str]:
    """The spellings a `schedule` accepts, from the parser's own tables."""
    out = [
        "## Schedule spellings",
        "",
        "`connections[].schedule`, `schedules[].schedule` and `schedule.reflections` accept "
        + triggers.ACCEPTED
        + ". More in [operations](operations.md#schedule-spellings).",
        "",
        "| spelling | the same as |",
        "|---|---|",
    ]
    for name, expression in triggers.NAMES.items():
        out.append(f"| `{name}` | `{expression}` |")
    out += [
        "| `every_N_minutes`, `every_N_hours` (also `every_minute`, `every_hour`) | every N "
        "minutes or hours; an N dividing the hour (or day) falls on round times, as `*/N` |",
        "| `manual` | only when asked, or `after:` another schedule |",
        "",
        "Names and cron expressions are read in the schedule's `timezone`, else "
        "`schedule.timezone` (an IANA name such as `Europe/Paris`).",
    ]
    return out


# -- commands -----------------------------------------------------------------------------


def cli_markdown() -> str:
    """The command reference: the `--help` of every command and subcommand, hidden ones left out."""
    root = _root_group()
    out = [
        "# Command reference",
        "",
        _generated_note("the commands' `--help`"),
        "",
    ]
    commands = list(_walk(root, _context(root, "fleuve", None)))
    out += ["## Contents", ""]
    out += [f"- [`{' '.join(path)}`](#{_anchor(' '.join(path))})" for path, _ in commands]
    out.append("")
    for path, ctx in commands:
        out += [f"## `{' '.join(path)}`", "", "```text", _help(ctx), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """The context `--help` would get, on a terminal WIDTH columns wide."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def _root_group() -> click.Group:
    """The `fleuve` group, imported only when the command reference is made."""
    import fleuve.cli

    for name in ("cli", "main"):
        found = getattr(fleuve.cli, name, None)
        if isinstance(found, click.Group):
            return found
    raise RuntimeError("fleuve.cli has no click group named cli or main")


def _walk(command: click.Command, ctx: click.Context) -> Any:
    """(path, context) of `command` and every visible subcommand, in the order help lists them."""
    yield ctx.command_path.split(), ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _walk(sub, _context(sub, name, ctx))


def _help(ctx: click.Context) -> str:
    """The command's help as a terminal WIDTH wide shows it, machine paths made generic."""
    text = ctx.command.get_help(ctx)
    home = str(Path.home())
    for path in sorted({str(Path.cwd()), home}, key=len, reverse=True):
        if len(path) > 1:
            text = text.replace(path, "~" if path == home else ".")
    return "\n".join(line.rstrip() for line in text.splitlines())


# -- both ---------------------------------------------------------------------------------


def _generated_note(source: str) -> str:
    return (
        f"<!-- Generated from {source} by `{REGENERATE}` (`python -m fleuve.reference`); "
        "do not edit by hand. -->"
    )


def _cell(text: str) -> str:
    """Text that stays in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def write(root: Path) -> list[Path]:
    """Write both references under `root` (the repository); the paths that changed."""
    changed = []
    for name, text in ((SETTINGS_FILE, settings_markdown()), (CLI_FILE, cli_markdown())):
        path = root / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """`python -m fleuve.reference [ROOT]`: regenerate the references of the repository at ROOT."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path.cwd()
    for path in write(root):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
