"""An Elasticsearch-compatible read API over the lake's log records and the audit trail.

Requests in Elasticsearch's query DSL are translated to one SQL statement each (hits, the
total, each aggregation) and run by DuckDB over `logs.records` in the lake, or over the
metadata database's `audit_events` attached read-only. Indices are views:
`<service>-logs-YYYY.MM.DD` (ingestion, engine, transform, serve, scheduler, platform; also
named after the tools Fleuve stands in for: `airbyte-`, `dremio-`, `dbt-`, `superset-logs`),
`fleuve-logs-YYYY.MM.DD` (every service) and `audit-YYYY.MM.DD`.

Full text (`match`, `match_phrase`, `query_string` on `message` and `error`) matches whole
words, case-insensitively, as Elasticsearch's standard analyzer does: a word is a run of
letters, digits and underscores. It is evaluated per row (a substring test narrowing a word
test) rather than through a full-text index: log records arrive every few seconds and a
DuckDB `fts` index is rebuilt whole, and the filters logs are searched with (time range,
service, level) leave few rows to test. Anything outside the supported DSL is a
`SearchError` (HTTP 400) naming the clause: never an approximate answer.
"""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleuve import __version__
from fleuve.logs.to_lake import SERVICES, TABLE

if TYPE_CHECKING:
    from fleuve.project import Project

VERSION = "8.13.0"  # the Elasticsearch version announced: the 8.x clients accept it
AUDIT = "audit"
# Index families: name -> the services whose records they hold (None: the audit trail).
TOOL_NAMES = {"airbyte": "ingestion", "dremio": "engine", "dbt": "transform", "superset": "serve"}
FAMILIES: dict[str, tuple[str, ...] | None] = {
    "fleuve-logs": SERVICES,
    **{f"{service}-logs": (service,) for service in SERVICES},
    **{f"{tool}-logs": (service,) for tool, service in TOOL_NAMES.items()},
    AUDIT: None,
}
_DAY = re.compile(r"^(?P<family>.+)-(?P<day>\d{4}\.\d{2}\.\d{2})$")
MAX_WINDOW = 10_000  # from + size, as index.max_result_window
# Matches up to this many are searched in memory (hits, total and aggregations).
NARROW_LIMIT = 100_000
# Where the audit trail is read from: the metadata database, attached read-only to the lake.
META = "fleuve_meta"


class SearchError(Exception):
    """A request outside the supported DSL, or malformed: HTTP 400 (or `status`)."""

    def __init__(self, reason: str, kind: str = "parsing_exception", status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.kind, self.status = reason, kind, status

    def body(self) -> dict[str, Any]:
        """The error in Elasticsearch's shape."""
        cause = {"type": self.kind, "reason": self.reason}
        # Fleuve's own error keys beside Elasticsearch's, which its clients read.
        return {
            "error": {"root_cause": [cause], **cause},
            "status": self.status,
            "errorMessage": self.reason,
            "moreInfo": "the supported search requests are listed in docs/operations.md",
        }


# -- fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappedField:
    """One searchable field: its SQL expression and Elasticsearch type."""

    sql: str
    kind: str  # date, keyword, text, long


LOG_FIELDS = {
    "@timestamp": MappedField('"timestamp"', "date"),
    "timestamp": MappedField('"timestamp"', "date"),
    "level": MappedField("level", "keyword"),
    "service": MappedField("service", "keyword"),
    "message": MappedField("message", "text"),
    "logger": MappedField("logger", "keyword"),
    "job_id": MappedField("job_id", "keyword"),
    "connection_id": MappedField("connection_id", "keyword"),
    "records_synced": MappedField("records_synced", "long"),
    "bytes_synced": MappedField("bytes_synced", "long"),
    "user": MappedField('"user"', "keyword"),
    "query_id": MappedField("query_id", "keyword"),
    "host": MappedField("host", "keyword"),
    "pid": MappedField("pid", "long"),
    "error": MappedField("error", "text"),
}
AUDIT_FIELDS = {
    "@timestamp": MappedField('"timestamp"', "date"),
    "timestamp": MappedField('"timestamp"', "date"),
    "kind": MappedField("kind", "keyword"),
    "action": MappedField("action", "keyword"),
    "outcome": MappedField("outcome", "keyword"),
    "user": MappedField('"user"', "keyword"),
    "client": MappedField("client", "keyword"),
    "target": MappedField("target", "keyword"),
}
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


# -- indices --------------------------------------------------------------------------------


@dataclass
class Target:
    """What an index expression names: the audit trail or some services' logs, some days."""

    audit: bool
    # (family, services, SQL condition on the day or None, its parameters) per matched part.
    parts: list[tuple[str, tuple[str, ...], str | None, list[Any]]] = field(default_factory=list)
    concrete: list[tuple[str, str]] = field(default_factory=list)  # (family, day) named exactly

    @property
    def family(self) -> str:
        """The family `_index` is named after: the one matched, or each record's service's."""
        names = {p[0] for p in self.parts}
        return names.pop() if len(names) == 1 else ""


def resolve(expression: str | None) -> Target:
    """The indices an expression (comma-separated names and wildcards) selects."""
    names = [n.strip() for n in (expression or "").split(",") if n.strip()]
    if not names or any(n in ("*", "_all") for n in names):
        raise SearchError(
            "searching every index at once is not supported: name the log indices "
            "(e.g. fleuve-logs-* or airbyte-logs-*) or the audit trail (audit-*)",
            "illegal_argument_exception",
        )
    parts: list[tuple[str, tuple[str, ...] | None, str | None, list[Any]]] = []
    concrete: list[tuple[str, str]] = []
    for name in names:
        if name.startswith("-"):
            raise SearchError(f"excluding indices ('{name}') is not supported")
        exact = _DAY.match(name)
        if "*" not in name and "?" not in name:
            if not exact or exact["family"] not in FAMILIES:
                raise SearchError(
                    f"no such index [{name}]", "index_not_found_exception", status=404
                )
            concrete.append((exact["family"], exact["day"]))
            parts.append((exact["family"], FAMILIES[exact["family"]], "= ?", [exact["day"]]))
            continue
        for family, services in FAMILIES.items():
            day_glob = _day_glob(name, family)
            if day_glob is None:
                continue
            if day_glob == "*":
                parts.append((family, services, None, []))
            else:
                parts.append((family, services, "GLOB ?", [day_glob]))
    audit = [p for p in parts if p[1] is None]
    if audit and len(audit) != len(parts):
        raise SearchError(
            "searching the audit trail and log indices together is not supported",
            "illegal_argument_exception",
        )
    target = Target(bool(audit), concrete=concrete)
    target.parts = [(f, s or (), d, p) for f, s, d, p in parts]
    return target


def _day_glob(pattern: str, family: str) -> str | None:
    """The glob the day part (YYYY.MM.DD) must match for `family-<day>` to match `pattern`;
    `*` for any day, None when no name of the family can match."""
    if pattern.startswith(family + "-"):
        rest = pattern[len(family) + 1 :]
        return "*" if rest in ("*", "") else rest
    # A pattern ending within the family's name: it matches every day if it ends with *.
    if pattern.endswith("*") and (family + "-").startswith(pattern[:-1]):
        return "*"
    if fnmatch.fnmatchcase(family + "-0000.00.00", pattern) and fnmatch.fnmatchcase(
        family + "-9999.99.99", pattern
    ):
        return "*"
    return None


# -- date math --------------------------------------------------------------------------------

_UNITS = {"y": "years", "M": "months", "w": "weeks", "d": "days", "h": "hours", "H": "hours"}
_UNITS.update({"m": "minutes", "s": "seconds"})
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def parse_date(value: Any, now: datetime, *, round_up: bool = False) -> datetime:
    """A naive UTC datetime from an Elasticsearch date: ISO text, epoch millis or date math
    (`now-1h`, `now-1d/d`, `2026-12-07||+1d`); `round_up` for `gt`/`lte` rounding."""
    if isinstance(value, bool):
        raise SearchError(f"cannot parse date [{value}]")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None)
    if not isinstance(value, str) or not value:
        raise SearchError(f"cannot parse date [{value}]")
    if value.startswith("now"):
        anchor, math = now, value[3:]
    elif "||" in value:
        text, math = value.split("||", 1)
        anchor = _iso(text)
    else:
        return _iso(value)
    pos = 0
    for m in _MATH.finditer(math):
        if m.start() != pos:
            break
        pos = m.end()
        if m[4]:
            anchor = _round(anchor, m[4], round_up)
        else:
            amount = int(m[2]) * (1 if m[1] == "+" else -1)
            anchor = _shift(anchor, m[3], amount)
    if pos != len(math):
        raise SearchError(f"failed to parse date field [{value}]: unsupported date math")
    return anchor


def _iso(text: str) -> datetime:
    if re.fullmatch(r"\d{10,}", text):
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"failed to parse date field [{text}]") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _shift(at: datetime, unit: str, amount: int) -> datetime:
    if unit in ("y", "M"):
        months = at.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = at.year + months // 12, months % 12 + 1
        day = min(at.day, _month_days(year, month))
        return at.replace(year=year, month=month, day=day)
    return at + timedelta(**{_UNITS[unit]: amount})


def _month_days(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def _round(at: datetime, unit: str, up: bool) -> datetime:
    """Round down to the unit; `up`: to the unit's last millisecond, as Elasticsearch does."""
    if unit == "y":
        start = datetime(at.year, 1, 1)
    elif unit == "M":
        start = datetime(at.year, at.month, 1)
    elif unit == "w":
        start = datetime(at.year, at.month, at.day) - timedelta(days=at.weekday())
    elif unit == "d":
        start = datetime(at.year, at.month, at.day)
    elif unit in ("h", "H"):
        start = at.replace(minute=0, second=0, microsecond=0)
    elif unit == "m":
        start = at.replace(second=0, microsecond=0)
    else:
        start = at.replace(microsecond=0)
    if not up:
        return start
    return _shift(start, unit, 1) - timedelta(milliseconds=1)


def _epoch_ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _iso_ms(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


# -- query translation ---------------------------------------------------------------------------

_WORD = r"[\pL\pN_]"
_TOKEN = re.compile(r"\w+")


class Compiler:
    """Translates a query DSL object to a SQL condition with `?` parameters."""

    def __init__(self, fields: dict[str, MappedField], now: datetime, extra: str) -> None:
        self.fields = fields
        self.now = now
        self.extra = extra  # the JSON column other fields are read from
        self.params: list[Any] = []

    def field(self, name: Any, clause: str) -> MappedField:
        """The field a clause names (`x.keyword` is `x`); fields outside the mapping are read
        from the record's other fields, as keywords."""
        if not isinstance(name, str) or not name:
            raise SearchError(f"[{clause}] needs a field name")
        if name.endswith(".keyword"):
            name = name.removesuffix(".keyword")
            known = self.fields.get(name)
            if known is not None and known.kind == "text":
                return MappedField(known.sql, "keyword")
        if name in self.fields:
            return self.fields[name]
        # The audit trail's `detail.x` and a log record's other fields are read from its JSON.
        name = name.removeprefix(self.extra + ".")
        if not _ID.match(name):
            raise SearchError(f"[{clause}] unsupported field name [{name}]")
        return MappedField(f"json_extract_string({self.extra}, '$.{name}')", "keyword")

    def value(self, value: Any) -> str:
        """A parameter placeholder for `value`."""
        self.params.append(value)
        return "?"

    def compile(self, query: Any) -> str:
        """The SQL condition of a query clause."""
        if not isinstance(query, dict) or len(query) != 1:
            raise SearchError("a query must be an object with exactly one clause")
        ((kind, body),) = query.items()
        handler = getattr(self, f"_q_{kind}", None)
        if handler is None:
            raise SearchError(f"unsupported query clause [{kind}]")
        return handler(body)

    # Each _q_<clause> translates one clause of the DSL.

    def _q_match_all(self, body: Any) -> str:
        self._only(body, "match_all", {"boost"})
        return "TRUE"

    def _q_match_none(self, body: Any) -> str:
        self._only(body, "match_none", set())
        return "FALSE"

    def _q_bool(self, body: Any) -> str:
        self._only(
            body, "bool", {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
        )
        # Compiled in the order their SQL is written in, so that parameters line up.
        groups = {k: body.get(k, []) for k in ("must", "filter", "must_not", "should")}
        sql: dict[str, list[str]] = {}
        for key, clauses in groups.items():
            if isinstance(clauses, dict):
                clauses = [clauses]
            if not isinstance(clauses, list):
                raise SearchError(f"[bool] [{key}] must be an object or an array")
            sql[key] = [self.compile(c) for c in clauses]
        conds = [f"({c})" for c in sql["must"] + sql["filter"]]
        conds += [f"NOT coalesce(({c}), FALSE)" for c in sql["must_not"]]
        should = sql["should"]
        if should:
            wanted = body.get("minimum_should_match")
            if wanted is None:
                wanted = 0 if conds else 1
            if isinstance(wanted, str) and re.fullmatch(r"-?\d+", wanted):
                wanted = int(wanted)
            if not isinstance(wanted, int) or isinstance(wanted, bool):
                raise SearchError(
                    f"[bool] minimum_should_match [{wanted}] is not supported: give a number"
                )
            if wanted < 0:
                wanted = max(0, len(should) + wanted)
            hits = " + ".join(f"CASE WHEN ({c}) THEN 1 ELSE 0 END" for c in should)
            # With none wanted, the clauses stay (their parameters are bound) and match all.
            conds.append(f"({hits}) >= {int(wanted)}")
        return " AND ".join(conds) if conds else "TRUE"

    def _single(self, body: Any, clause: str) -> tuple[str, Any]:
        if not isinstance(body, dict):
            raise SearchError(f"[{clause}] must be an object")
        names = [k for k in body if k not in ("boost", "_name")]
        if len(names) != 1:
            raise SearchError(f"[{clause}] query must name exactly one field")
        return names[0], body[names[0]]

    def _q_term(self, body: Any) -> str:
        name, spec = self._single(body, "term")
        insensitive = False
        if isinstance(spec, dict):
            self._only(spec, "term", {"value", "boost", "case_insensitive"})
            insensitive = bool(spec.get("case_insensitive", False))
            if "value" not in spec:
                raise SearchError("[term] needs a value")
            spec = spec["value"]
        return self._equals(self.field(name, "term"), spec, insensitive, "term")

    def _equals(self, f: MappedField, value: Any, insensitive: bool, clause: str) -> str:
        if isinstance(value, (dict, list)) or value is None:
            raise SearchError(f"[{clause}] value must be a string, number or boolean")
        if f.kind == "text":
            word = str(value)
            if insensitive:
                word = word.lower()
            elif word != word.lower() or not _TOKEN.fullmatch(word):
                return "FALSE"  # indexed words are lowercase single words
            return self._words(f.sql, [word], "AND")
        if f.kind == "date":
            at = parse_date(value, self.now)
            return f"{f.sql} = {self.value(at)}"
        if f.kind == "long":
            return f"{f.sql} = {self.value(self._number(value, clause))}"
        if insensitive:
            return f"lower({f.sql}) = lower({self.value(str(value))})"
        return f"{f.sql} = {self.value(self._text(value))}"

    def _q_terms(self, body: Any) -> str:
        name, values = self._single(body, "terms")
        if not isinstance(values, list):
            raise SearchError("[terms] needs an array of values (terms lookup is not supported)")
        f = self.field(name, "terms")
        if not values:
            return "FALSE"
        if f.kind in ("keyword",):
            marks = ", ".join(self.value(self._text(v)) for v in values)
            return f"{f.sql} IN ({marks})"
        return "(" + " OR ".join(self._equals(f, v, False, "terms") for v in values) + ")"

    def _q_exists(self, body: Any) -> str:
        self._only(body, "exists", {"field", "boost"})
        return f"{self.field(body.get('field'), 'exists').sql} IS NOT NULL"

    def _q_match(self, body: Any) -> str:
        name, spec = self._single(body, "match")
        operator = "OR"
        if isinstance(spec, dict):
            self._only(spec, "match", {"query", "operator", "boost"})
            operator = str(spec.get("operator", "or")).upper()
            if operator not in ("AND", "OR"):
                raise SearchError(f"[match] unknown operator [{operator}]")
            spec = spec.get("query")
        f = self.field(name, "match")
        if f.kind != "text":
            return self._equals(f, spec, False, "match")
        words = _TOKEN.findall(str(spec).lower())
        return self._words(f.sql, words, operator) if words else "FALSE"

    def _q_match_phrase(self, body: Any) -> str:
        name, spec = self._single(body, "match_phrase")
        if isinstance(spec, dict):
            self._only(spec, "match_phrase", {"query", "boost"})
            spec = spec.get("query")
        f = self.field(name, "match_phrase")
        if f.kind != "text":
            return self._equals(f, spec, False, "match_phrase")
        words = _TOKEN.findall(str(spec).lower())
        return self._phrase(f.sql, words) if words else "FALSE"

    def _q_range(self, body: Any) -> str:
        name, spec = self._single(body, "range")
        if not isinstance(spec, dict):
            raise SearchError("[range] needs an object of bounds")
        self._only(spec, "range", {"gte", "gt", "lte", "lt", "format", "boost", "time_zone"})
        if spec.get("format") not in (None, "strict_date_optional_time", "epoch_millis"):
            raise SearchError(f"[range] format [{spec['format']}] is not supported")
        if spec.get("time_zone") not in (None, "UTC", "Z", "+00:00"):
            raise SearchError("[range] time_zone other than UTC is not supported")
        f = self.field(name, "range")
        ops = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<"}
        conds = []
        for key, op in ops.items():
            if spec.get(key) is None:
                continue
            bound = spec[key]
            if f.kind == "date":
                value: Any = parse_date(bound, self.now, round_up=key in ("gt", "lte"))
            elif f.kind == "long":
                value = self._number(bound, "range")
            elif f.kind == "keyword" and f.sql.startswith("json_extract"):
                raise SearchError(f"[range] on [{name}], which is not in the mapping")
            else:
                value = self._text(bound)
            conds.append(f"{f.sql} {op} {self.value(value)}")
        return " AND ".join(conds) if conds else f"{f.sql} IS NOT NULL"

    def _q_query_string(self, body: Any) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise SearchError("[query_string] needs a query text")
        self._only(body, "query_string", {"query", "default_field", "default_operator", "boost"})
        operator = str(body.get("default_operator", "OR")).upper()
        return self.compile(query_string(body["query"], body.get("default_field"), operator))

    def _q_simple_query_string(self, body: Any) -> str:
        raise SearchError("unsupported query clause [simple_query_string]: use query_string")

    def _q_any_field(self, body: dict[str, Any]) -> str:
        """A query_string word without a field: any text field holds it, or any keyword equals it."""
        alternatives = []
        for f in {f.sql: f for f in self.fields.values()}.values():
            if f.kind == "text":
                words = _TOKEN.findall(body["query"].lower())
                if words:
                    alternatives.append(
                        self._phrase(f.sql, words)
                        if body["phrase"]
                        else self._words(f.sql, words, "OR")
                    )
            elif f.kind == "keyword":
                alternatives.append(f"{f.sql} = {self.value(body['query'])}")
        return "(" + " OR ".join(alternatives) + ")" if alternatives else "FALSE"

    # -- helpers

    def _words(self, column: str, words: list[str], operator: str) -> str:
        """Whole words in a text column, case-insensitively."""
        conds = [
            f"({column} ILIKE {self.value('%' + _like(w) + '%')} ESCAPE '\\' AND "
            f"regexp_matches({column}, {self.value(_word_pattern([w]))}, 'i'))"
            for w in words
        ]
        return "(" + f" {operator} ".join(conds) + ")"

    def _phrase(self, column: str, words: list[str]) -> str:
        return (
            f"({column} ILIKE {self.value('%' + _like(words[0]) + '%')} ESCAPE '\\' AND "
            f"regexp_matches({column}, {self.value(_word_pattern(words))}, 'i'))"
        )

    def _only(self, body: Any, clause: str, allowed: set[str]) -> None:
        if not isinstance(body, dict):
            raise SearchError(f"[{clause}] must be an object")
        unknown = set(body) - allowed
        if unknown:
            raise SearchError(f"[{clause}] does not support [{sorted(unknown)[0]}]")

    def _number(self, value: Any, clause: str) -> float | int:
        if isinstance(value, bool):
            raise SearchError(f"[{clause}] expects a number, not [{value}]")
        try:
            return int(value) if float(value).is_integer() else float(value)
        except (TypeError, ValueError):
            raise SearchError(f"[{clause}] expects a number, not [{value}]") from None

    def _text(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _word_pattern(words: list[str]) -> str:
    inner = f"{_WORD.replace('[', '[^', 1)}+".join(re.escape(w) for w in words)
    return f"(^|[^\\pL\\pN_]){inner}($|[^\\pL\\pN_])"


# -- query_string (the simple cases) ----------------------------------------------------------

_QS_TOKEN = re.compile(
    r"\s*(?:(?P<op>AND|OR|NOT|&&|\|\|)(?=\s|$)|(?P<sign>[+-]|!)?"
    r'(?:(?P<field>[A-Za-z_@][\w.@]*):)?(?P<value>"[^"]*"|[^\s"]+))'
)
_QS_UNSUPPORTED = set("()[]{}~^/\\<>=")


def query_string(text: str, default_field: str | None, operator: str) -> dict[str, Any]:
    """A bool query equivalent to a simple query string: words, `field:value`, quoted
    phrases, `field:*`, AND / OR / NOT, `+` and `-`. Groups, ranges, fuzziness, boosts,
    regular expressions and wildcards inside words are refused (400)."""
    if operator not in ("AND", "OR"):
        raise SearchError(f"[query_string] unknown default_operator [{operator}]")
    outside_quotes = re.sub(r'"[^"]*"', "", text)
    bad = sorted(set(outside_quotes) & _QS_UNSUPPORTED)
    if bad or " TO " in outside_quotes:
        what = bad[0] if bad else "TO"
        raise SearchError(
            f"[query_string] syntax [{what}] is not supported (groups, ranges, fuzziness, "
            "boosts and regular expressions): use a bool query"
        )
    must, should, must_not = [], [], []
    explicit: set[str] = set()
    negate_next = False
    pos = 0
    items: list[tuple[str, dict[str, Any]]] = []
    for m in _QS_TOKEN.finditer(text):
        if m.start() != pos:
            break
        pos = m.end()
        if m["op"]:
            op = {"&&": "AND", "||": "OR"}.get(m["op"], m["op"])
            if op == "NOT":
                negate_next = True
            else:
                explicit.add(op)
            continue
        sign = m["sign"] or ""
        clause = _qs_clause(m["field"] or default_field, m["value"])
        if negate_next or sign in ("-", "!"):
            items.append(("not", clause))
        elif sign == "+":
            items.append(("must", clause))
        else:
            items.append(("plain", clause))
        negate_next = False
    if text[pos:].strip() or negate_next:
        raise SearchError(f"[query_string] cannot parse [{text}]")
    if len(explicit) > 1:
        raise SearchError("[query_string] mixing AND and OR needs groups, which are not supported")
    combine = explicit.pop() if explicit else operator
    for kind, clause in items:
        if kind == "not":
            must_not.append(clause)
        elif kind == "must" or combine == "AND":
            must.append(clause)
        else:
            should.append(clause)
    if not (must or should or must_not):
        return {"match_none": {}}
    query: dict[str, Any] = {"must": must, "should": should, "must_not": must_not}
    if should and not must:
        query["minimum_should_match"] = 1
    if not should and not must:
        query["must"] = [{"match_all": {}}]
    return {"bool": query}


def _qs_clause(name: str | None, value: str) -> dict[str, Any]:
    phrase = value.startswith('"')
    text = value.strip('"') if phrase else value
    if not phrase and ("*" in text or "?" in text):
        if text == "*" and name:
            return {"exists": {"field": name}}
        raise SearchError(f"[query_string] wildcards in [{value}] are not supported")
    if name is None or name == "*":
        return {"any_field": {"query": text, "phrase": phrase}}
    return {"match_phrase" if phrase else "match": {name: text}}


# -- running a search ---------------------------------------------------------------------------


@dataclass
class IndexSource:
    """The rows a search reads: a FROM clause, its fields and how a hit is named."""

    sql: str
    params: list[Any]
    fields: dict[str, MappedField]
    extra: str
    index: str  # SQL naming each row's index


class Searcher:
    """Answers _search, _count, _cat/indices and _mapping over a project's logs and audit."""

    def __init__(self, project: Project, clock: Callable[[], datetime] | None = None) -> None:
        self.project = project
        self.clock = clock or (lambda: datetime.now(UTC).replace(tzinfo=None))
        self._attached = threading.Lock()
        self._meta_ready = False
        self._logs_exist = False
        self._local = threading.local()

    # -- sources

    def _source(self, target: Target) -> IndexSource:
        if target.audit:
            self._attach_metadata()
            sql = (
                f'(SELECT CAST(id AS VARCHAR) AS id, CAST("at" AS TIMESTAMP) AS "timestamp", '
                f'kind, action, outcome, username AS "user", client, target, '
                f"CAST(detail AS VARCHAR) AS detail FROM {META}.audit_events)"
            )
            conds, params = self._days(target)
            where = f" WHERE {conds}" if conds else ""
            return IndexSource(
                f"(SELECT * FROM {sql}{where})",
                params,
                AUDIT_FIELDS,
                "detail",
                "'audit-' || strftime(\"timestamp\", '%Y.%m.%d')",
            )
        if not self._has_logs():
            return IndexSource(
                '(SELECT * FROM (SELECT NULL::VARCHAR AS id, NULL::TIMESTAMP AS "timestamp") '
                "WHERE FALSE)",
                [],
                {},
                "NULL",
                "NULL",
            )
        conds, params = self._days(target)
        family = target.family
        index = (
            f"'{family}-'" if family else "service || '-logs-'"
        ) + " || strftime(\"timestamp\", '%Y.%m.%d')"
        return IndexSource(
            f"(SELECT * FROM {TABLE} WHERE {conds})", params, LOG_FIELDS, "fields", index
        )

    def _days(self, target: Target) -> tuple[str, list[Any]]:
        """The condition selecting the target's services and days."""
        ors: list[str] = []
        params: list[Any] = []
        day = "strftime(\"timestamp\", '%Y.%m.%d')"
        for _family, services, day_cond, day_params in target.parts:
            conds = []
            if services:
                conds.append(f"service IN ({', '.join('?' for _ in services)})")
                params.extend(services)
            if day_cond:
                # The day's bounds as a range too, so that partitions and files are pruned.
                if day_cond == "= ?":
                    start = datetime.strptime(day_params[0], "%Y.%m.%d")
                    conds.append('"timestamp" >= ? AND "timestamp" < ?')
                    params.extend([start, start + timedelta(days=1)])
                else:
                    conds.append(f"{day} {day_cond}")
                    params.extend(day_params)
            ors.append("(" + " AND ".join(conds or ["TRUE"]) + ")")
        if not ors:
            return "FALSE", []
        return " OR ".join(ors), params

    def _attach_metadata(self) -> None:
        """Attach the metadata database read-only, once, where the lake's sessions see it."""
        with self._attached:
            if self._meta_ready:
                return
            url = self.project.settings.metadata_url
            if url.startswith("sqlite:///"):
                target, kind = url.removeprefix("sqlite:///"), "sqlite"
            elif url.startswith(("postgresql", "postgres")):
                rest = url.split("://", 1)[1]
                target, kind = "postgresql://" + rest, "postgres"
            else:
                raise SearchError(
                    f"the audit trail cannot be searched in a {url.split(':')[0]} database",
                    "illegal_argument_exception",
                )
            quoted = "'" + target.replace("'", "''") + "'"
            with self.project.lake.session() as con:
                con.execute(f"ATTACH IF NOT EXISTS {quoted} AS {META} (TYPE {kind}, READ_ONLY)")
            self._meta_ready = True

    def _narrowed(
        self, source: IndexSource, where: str, params: list[Any]
    ) -> tuple[IndexSource, str, list[Any]]:
        """The matching records copied into a temporary table, when there are few of them: the
        total, the hits and each aggregation then read memory, where each statement on the lake
        would read its catalog again. Many matches are read from the lake by each statement."""
        con = self._local.con
        name = f"fleuve_matches_{threading.get_ident()}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {source.sql} WHERE {where} "
            f"LIMIT {NARROW_LIMIT + 1}",
            params,
        )
        if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] > NARROW_LIMIT:
            con.execute(f"DROP TABLE {name}")
            return source, where, params
        return IndexSource(name, [], source.fields, source.extra, source.index), "TRUE", []

    def _has_logs(self) -> bool:
        """True once logs.records exists (remembered: it is never dropped)."""
        if not self._logs_exist:
            self._logs_exist = self.project.lake.table_exists(TABLE)
        return self._logs_exist

    @contextmanager
    def _session(self) -> Iterator[None]:
        """One lake cursor for every statement of a request (opening one costs milliseconds)."""
        if getattr(self._local, "con", None) is not None:
            yield
            return
        with self.project.lake.session() as con:
            # One read transaction: the lake's catalog is read once, and every statement of the
            # request (hits, total, aggregations) sees the same snapshot.
            con.execute("BEGIN TRANSACTION")
            self._local.con = con
            try:
                yield
            finally:
                self._local.con = None
                con.execute("ROLLBACK")

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._session():
            return self._local.con.execute(sql, params).fetchall()

    def _fetch_named(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._session():
            cursor = self._local.con.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- _search and _count

    def search(self, index: str | None, body: dict[str, Any], params: dict[str, str]) -> dict:
        """The answer to `GET|POST /<index>/_search`."""
        with self._session():
            return self._search(index, body, params)

    def _search(self, index: str | None, body: dict[str, Any], params: dict[str, str]) -> dict:
        started = time.perf_counter()
        body = _with_uri_params(body, params, search=True)
        _only_keys(
            body,
            "_search",
            {
                "query",
                "size",
                "from",
                "sort",
                "_source",
                "aggs",
                "aggregations",
                "track_total_hits",
                "timeout",
                "version",
                "seq_no_primary_term",
                "stored_fields",
            },
        )
        target = resolve(index)
        source = self._source(target)
        self._check_exists(target, source)
        compiler = Compiler(source.fields, self.clock(), source.extra)
        where = compiler.compile(body.get("query", {"match_all": {}}))
        base_params = [*source.params, *compiler.params]
        size, start = _int(body.get("size", 10), "size"), _int(body.get("from", 0), "from")
        if start + size > MAX_WINDOW:
            raise SearchError(
                f"Result window is too large, from + size must be less than or equal to: "
                f"[{MAX_WINDOW}] but was [{start + size}]",
                "illegal_argument_exception",
            )
        aggs = body.get("aggs", body.get("aggregations"))
        if source.fields and (aggs or size):
            source, where, base_params = self._narrowed(source, where, base_params)
        total = self._fetch(f"SELECT count(*) FROM {source.sql} WHERE {where}", base_params)[0][0]
        hits: list[dict[str, Any]] = []
        if size and total and source.fields:
            order = _order(body.get("sort"), compiler)
            rows = self._fetch_named(
                f"SELECT {source.index} AS _index, * FROM {source.sql} WHERE {where} "
                f"ORDER BY {order} LIMIT {size} OFFSET {start}",
                base_params,
            )
            sorted_by = body.get("sort") is not None
            hits = [_hit(row, body.get("_source", True), sorted_by) for row in rows]
        answer: dict[str, Any] = {
            "took": 0,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": total, "relation": "eq"},
                "max_score": None if body.get("sort") is not None or not hits else 1.0,
                "hits": hits,
            },
        }
        if params.get("rest_total_hits_as_int") == "true":
            answer["hits"]["total"] = total
        if body.get("track_total_hits") is False:
            del answer["hits"]["total"]
        if aggs is not None:
            answer["aggregations"] = Aggregator(self, source, where, base_params, compiler).run(
                aggs
            )
        answer["took"] = int((time.perf_counter() - started) * 1000)
        return answer

    def count(self, index: str | None, body: dict[str, Any], params: dict[str, str]) -> dict:
        """The answer to `GET|POST /<index>/_count`."""
        with self._session():
            return self._count(index, body, params)

    def _count(self, index: str | None, body: dict[str, Any], params: dict[str, str]) -> dict:
        body = _with_uri_params(body, params, search=False)
        _only_keys(body, "_count", {"query"})
        target = resolve(index)
        source = self._source(target)
        self._check_exists(target, source)
        compiler = Compiler(source.fields, self.clock(), source.extra)
        where = compiler.compile(body.get("query", {"match_all": {}}))
        total = self._fetch(
            f"SELECT count(*) FROM {source.sql} WHERE {where}", [*source.params, *compiler.params]
        )[0][0]
        return {"count": total, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    def _check_exists(self, target: Target, source: IndexSource) -> None:
        """A concrete index name of a day without records is unknown, as in Elasticsearch."""
        if not target.concrete:
            return
        existing = {name for name, _docs in self.indices()}
        for family, day in target.concrete:
            name = f"{family}-{day}"
            if name not in existing:
                raise SearchError(f"no such index [{name}]", "index_not_found_exception", 404)

    # -- _cat/indices and _mapping

    def indices(self, audit: bool = True) -> list[tuple[str, int]]:
        """Every index that holds records, with its record count."""
        out: dict[str, int] = {}
        if self._has_logs():
            rows = self._fetch(
                f"SELECT service, strftime(\"timestamp\", '%Y.%m.%d') AS day, count(*) "
                f"FROM {TABLE} GROUP BY 1, 2",
                [],
            )
            aliases = {service: tool for tool, service in TOOL_NAMES.items()}
            for service, day, docs in rows:
                names = [f"{service}-logs-{day}", f"fleuve-logs-{day}"]
                if service in aliases:
                    names.append(f"{aliases[service]}-logs-{day}")
                for name in names:
                    out[name] = out.get(name, 0) + docs
        if audit:
            self._attach_metadata()
            rows = self._fetch(
                f"SELECT strftime(CAST(\"at\" AS TIMESTAMP), '%Y.%m.%d'), count(*) "
                f"FROM {META}.audit_events GROUP BY 1",
                [],
            )
            for day, docs in rows:
                out[f"audit-{day}"] = docs
        return sorted(out.items())

    def matching(self, expression: str | None, audit: bool) -> list[tuple[str, int]]:
        """The existing indices an expression names (every one without an expression)."""
        names = [n.strip() for n in (expression or "*").split(",") if n.strip()]
        if any(n in ("_all",) for n in names):
            names = ["*"]
        return [
            (name, docs)
            for name, docs in self.indices(audit)
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in names)
        ]

    def mapping(self, expression: str | None, audit: bool) -> dict[str, Any]:
        """The answer to `GET /<index>/_mapping`."""
        found = self.matching(expression, audit)
        if expression and not found and "*" not in expression:
            raise SearchError(f"no such index [{expression}]", "index_not_found_exception", 404)
        out = {}
        for name, _docs in found:
            fields = AUDIT_FIELDS if name.startswith(AUDIT + "-") else LOG_FIELDS
            props: dict[str, Any] = {}
            for key, f in fields.items():
                if f.kind == "text":
                    props[key] = {"type": "text", "fields": {"keyword": {"type": "keyword"}}}
                else:
                    props[key] = {"type": f.kind}
            if name.startswith(AUDIT + "-"):
                props["detail"] = {"type": "object", "enabled": False}
            else:
                props["fields"] = {"type": "object", "enabled": False}
            out[name] = {"mappings": {"properties": props}}
        return out


def root_info() -> dict[str, Any]:
    """The answer to `GET /`: what Elasticsearch clients check before talking."""
    return {
        "name": socket.gethostname(),
        "cluster_name": "fleuve",
        "cluster_uuid": "fleuve-logs",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "fleuve",
            "build_hash": __version__,
            "build_date": "2026-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.10.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def _with_uri_params(body: dict[str, Any], params: dict[str, str], *, search: bool) -> dict:
    """The body completed with the URI's parameters (q, size, from, sort); others refused."""
    harmless = {
        "pretty",
        "human",
        "error_trace",
        "ignore_unavailable",
        "allow_no_indices",
        "expand_wildcards",
        "rest_total_hits_as_int",
        "track_total_hits",
        "format",
        "filter_path_unused",
    }
    body = dict(body)
    for key, value in params.items():
        if key == "q":
            if "query" in body:
                raise SearchError("give the query either as q= or in the body, not both")
            body["query"] = {"query_string": {"query": value}}
        elif key in ("size", "from") and search:
            body[key] = _int(value, key)
        elif key == "sort" and search:
            body["sort"] = [
                {p.split(":")[0]: {"order": p.split(":")[1] if ":" in p else "asc"}}
                for p in value.split(",")
            ]
        elif key == "track_total_hits" and search:
            body[key] = value != "false"
        elif key not in harmless:
            raise SearchError(
                f"request parameter [{key}] is not supported", "illegal_argument_exception"
            )
    return body


def _only_keys(body: dict[str, Any], what: str, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SearchError(f"[{what}] unsupported request key [{unknown[0]}]")


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SearchError(f"[{name}] must be a non-negative number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SearchError(f"[{name}] must be a non-negative number") from None
    if number < 0:
        raise SearchError(f"[{name}] must be a non-negative number")
    return number


def _order(sort: Any, compiler: Compiler) -> str:
    """ORDER BY for a sort specification (default: newest first, then by id)."""
    if sort is None:
        return '"timestamp" DESC, id DESC'
    if not isinstance(sort, list):
        sort = [sort]
    terms = []
    for item in sort:
        if isinstance(item, str):
            name, order = item, "desc" if item == "_score" else "asc"
        elif isinstance(item, dict) and len(item) == 1:
            ((name, spec),) = item.items()
            if isinstance(spec, str):
                order = spec
            elif isinstance(spec, dict):
                compiler._only(spec, "sort", {"order", "unmapped_type", "format"})
                order = spec.get("order", "asc")
            else:
                raise SearchError(f"[sort] cannot parse [{item}]")
        else:
            raise SearchError(f"[sort] cannot parse [{item}]")
        if order not in ("asc", "desc"):
            raise SearchError(f"[sort] unknown order [{order}]")
        if name == "_score":
            continue  # every hit scores the same: the order falls to the next key
        if name == "_doc":
            terms.append(f"id {order.upper()}")
            continue
        f = compiler.field(name, "sort")
        if f.kind == "text":
            raise SearchError(
                f"[sort] on the text field [{name}] is not supported: sort on [{name}.keyword]",
                "illegal_argument_exception",
            )
        terms.append(f"{f.sql} {order.upper()} NULLS LAST")
    terms.append("id DESC")
    return ", ".join(terms)


def _hit(row: dict[str, Any], wanted: Any, sorted_by: bool) -> dict[str, Any]:
    """One hit: `_index`, `_id` and the record as `_source` (its other fields merged in)."""
    doc: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("_index", "id"):
            continue
        if key in ("fields", "detail"):
            if value:
                parsed = json.loads(value)
                if key == "detail":
                    doc["detail"] = parsed
                else:
                    for k, v in parsed.items():
                        doc.setdefault(k, v)
            continue
        if value is None:
            continue
        if isinstance(value, datetime):
            value = _iso_ms(value)
        doc[key] = value
    if "timestamp" in doc:
        doc = {"@timestamp": doc["timestamp"], **doc}
    hit = {"_index": row["_index"], "_id": row["id"], "_score": None if sorted_by else 1.0}
    source = _filter_source(doc, wanted)
    if source is not None:
        hit["_source"] = source
    return hit


def _filter_source(doc: dict[str, Any], wanted: Any) -> dict[str, Any] | None:
    if wanted is True or wanted is None:
        return doc
    if wanted is False:
        return None
    includes: list[str] = []
    excludes: list[str] = []
    if isinstance(wanted, str):
        includes = [wanted]
    elif isinstance(wanted, list):
        includes = [str(w) for w in wanted]
    elif isinstance(wanted, dict):
        unknown = set(wanted) - {"includes", "excludes", "include", "exclude"}
        if unknown:
            raise SearchError(f"[_source] does not support [{sorted(unknown)[0]}]")
        inc: Any = wanted.get("includes", wanted.get("include", []))
        exc: Any = wanted.get("excludes", wanted.get("exclude", []))
        includes = [inc] if isinstance(inc, str) else list(inc)
        excludes = [exc] if isinstance(exc, str) else list(exc)
    else:
        raise SearchError("[_source] must be a boolean, a field list or includes/excludes")
    return {
        k: v
        for k, v in doc.items()
        if (not includes or any(fnmatch.fnmatchcase(k, p) for p in includes))
        and not any(fnmatch.fnmatchcase(k, p) for p in excludes)
    }


# -- aggregations ---------------------------------------------------------------------------------

_CALENDAR = {
    "minute": "minute",
    "1m": "minute",
    "hour": "hour",
    "1h": "hour",
    "day": "day",
    "1d": "day",
    "week": "week",
    "1w": "week",
    "month": "month",
    "1M": "month",
    "quarter": "quarter",
    "1q": "quarter",
    "year": "year",
    "1y": "year",
}
_FIXED = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_FIXED_UNIT = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_METRICS = {
    "min": "min({})",
    "max": "max({})",
    "avg": "avg({})",
    "sum": "sum({})",
    "cardinality": "count(DISTINCT {})",
    "value_count": "count({})",
}


class Aggregator:
    """Computes aggregations over the rows a query selected, one SQL statement per bucket set."""

    def __init__(
        self,
        searcher: Searcher,
        source: IndexSource,
        where: str,
        params: list[Any],
        compiler: Compiler,
    ) -> None:
        self.searcher, self.source, self.compiler = searcher, source, compiler
        self.where, self.params = where, params

    def run(self, aggs: Any, where: str | None = None, params: list[Any] | None = None) -> dict:
        """The `aggregations` answer for `aggs` over the rows matching `where`."""
        where = self.where if where is None else where
        params = self.params if params is None else params
        if not isinstance(aggs, dict):
            raise SearchError("[aggs] must be an object")
        out = {}
        for name, spec in aggs.items():
            if not isinstance(spec, dict):
                raise SearchError(f"aggregation [{name}] must be an object")
            sub = spec.get("aggs", spec.get("aggregations"))
            kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
            if len(kinds) != 1:
                raise SearchError(f"aggregation [{name}] must have exactly one type")
            kind = kinds[0]
            body = spec[kind]
            if kind == "terms":
                out[name] = self._terms(body, sub, where, params)
            elif kind == "date_histogram":
                out[name] = self._histogram(body, sub, where, params)
            elif kind in _METRICS:
                if sub:
                    raise SearchError(
                        f"aggregation [{name}] of type [{kind}] cannot have sub-aggregations"
                    )
                out[name] = self._metric(kind, body, where, params)
            else:
                raise SearchError(
                    f"unsupported aggregation type [{kind}] in [{name}]",
                    "named_object_not_found_exception",
                )
        return out

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return self.searcher._fetch(sql, params)

    def _field(self, body: Any, kind: str) -> MappedField:
        if not isinstance(body, dict):
            raise SearchError(f"[{kind}] must be an object")
        f = self.compiler.field(body.get("field"), kind)
        return f

    def _metric(self, kind: str, body: Any, where: str, params: list[Any]) -> dict[str, Any]:
        self.compiler._only(
            body, kind, {"field", "precision_threshold"} if kind == "cardinality" else {"field"}
        )
        f = self._field(body, kind)
        if kind in ("avg", "sum") and f.kind != "long":
            raise SearchError(
                f"field [{body['field']}] of type [{f.kind}] is not supported for aggregation [{kind}]",
                "illegal_argument_exception",
            )
        if kind in ("min", "max") and f.kind not in ("long", "date"):
            raise SearchError(
                f"field [{body['field']}] of type [{f.kind}] is not supported for aggregation [{kind}]",
                "illegal_argument_exception",
            )
        expr = _METRICS[kind].format(f.sql)
        value = self._fetch(f"SELECT {expr} FROM {self.source.sql} WHERE {where}", params)[0][0]
        if kind in ("cardinality", "value_count"):
            return {"value": int(value or 0)}
        if kind == "sum":
            return {"value": float(value or 0)}
        if value is None:
            return {"value": None}
        if isinstance(value, datetime):
            return {"value": float(_epoch_ms(value)), "value_as_string": _iso_ms(value)}
        return {"value": float(value)}

    def _terms(self, body: Any, sub: Any, where: str, params: list[Any]) -> dict[str, Any]:
        self.compiler._only(
            body, "terms", {"field", "size", "order", "min_doc_count", "shard_size"}
        )
        f = self._field(body, "terms")
        if f.kind == "text":
            raise SearchError(
                f"Text fields are not optimised for operations like aggregations: use "
                f"[{body['field']}.keyword]",
                "illegal_argument_exception",
            )
        size = _int(body.get("size", 10), "size")
        min_count = _int(body.get("min_doc_count", 1), "min_doc_count")
        if min_count == 0:
            raise SearchError("[terms] min_doc_count 0 is not supported")
        order = body.get("order", {"_count": "desc"})
        if isinstance(order, list) and len(order) == 1:
            order = order[0]
        if not isinstance(order, dict) or len(order) != 1:
            raise SearchError("[terms] order must be one of {_count|_key: asc|desc}")
        ((by, direction),) = order.items()
        if by not in ("_count", "_key") or direction not in ("asc", "desc"):
            raise SearchError(f"[terms] order by [{by}] is not supported: use _count or _key")
        ordering = (
            f"doc_count {direction.upper()}, key ASC"
            if by == "_count"
            else f"key {direction.upper()}"
        )
        rows = self._fetch(
            f"SELECT {f.sql} AS key, count(*) AS doc_count FROM {self.source.sql} "
            f"WHERE ({where}) AND {f.sql} IS NOT NULL GROUP BY 1 HAVING count(*) >= {min_count} "
            f"ORDER BY {ordering}",
            params,
        )
        top = rows[:size]
        other = sum(r[1] for r in rows[size:])
        buckets = []
        for key, docs in top:
            bucket: dict[str, Any] = {"key": _key(key), "doc_count": docs}
            if isinstance(key, datetime):
                bucket["key_as_string"] = _iso_ms(key)
            if sub:
                bucket.update(self.run(sub, f"({where}) AND {f.sql} = ?", [*params, key]))
            buckets.append(bucket)
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}

    def _histogram(self, body: Any, sub: Any, where: str, params: list[Any]) -> dict[str, Any]:
        self.compiler._only(
            body,
            "date_histogram",
            {
                "field",
                "fixed_interval",
                "calendar_interval",
                "min_doc_count",
                "format",
                "time_zone",
            },
        )
        f = self._field(body, "date_histogram")
        if f.kind != "date":
            raise SearchError(f"[date_histogram] field [{body['field']}] is not a date")
        if body.get("time_zone") not in (None, "UTC", "Z", "+00:00"):
            raise SearchError("[date_histogram] time_zone other than UTC is not supported")
        if body.get("format") not in (None, "strict_date_optional_time"):
            raise SearchError(f"[date_histogram] format [{body['format']}] is not supported")
        fixed, calendar = body.get("fixed_interval"), body.get("calendar_interval")
        if (fixed is None) == (calendar is None):
            raise SearchError(
                "[date_histogram] needs exactly one of fixed_interval, calendar_interval"
            )
        if calendar is not None:
            unit = _CALENDAR.get(str(calendar))
            if unit is None:
                raise SearchError(f"[date_histogram] unknown calendar_interval [{calendar}]")
            bucket_sql = f"date_trunc('{unit}', {f.sql})"

            def step(at: datetime) -> datetime:
                if unit == "quarter":
                    return _shift(at, "M", 3)
                letter = {
                    "minute": "m",
                    "hour": "h",
                    "day": "d",
                    "week": "w",
                    "month": "M",
                    "year": "y",
                }[unit]
                return _shift(at, letter, 1)
        else:
            m = _FIXED.match(str(fixed))
            if not m:
                raise SearchError(f"[date_histogram] unknown fixed_interval [{fixed}]")
            width = timedelta(**{_FIXED_UNIT[m[2]]: int(m[1])})
            if width <= timedelta(0):
                raise SearchError(f"[date_histogram] fixed_interval [{fixed}] must be positive")
            micros = int(width.total_seconds() * 1_000_000)
            # Buckets counted from the epoch, as Elasticsearch does.
            bucket_sql = f"make_timestamp((epoch_us({f.sql}) // {micros}) * {micros})"

            def step(at: datetime) -> datetime:
                return at + width

        min_count = _int(body.get("min_doc_count", 0), "min_doc_count")
        rows = self._fetch(
            f"SELECT {bucket_sql} AS key, count(*) FROM {self.source.sql} "
            f"WHERE ({where}) AND {f.sql} IS NOT NULL GROUP BY 1 ORDER BY 1",
            params,
        )
        counts = dict(rows)
        keys = list(counts)
        if min_count == 0 and keys:
            filled, at = [], keys[0]
            while at <= keys[-1]:
                filled.append(at)
                at = step(at)
            keys = filled
        buckets = []
        for key in keys:
            docs = counts.get(key, 0)
            if docs < min_count:
                continue
            bucket: dict[str, Any] = {
                "key_as_string": _iso_ms(key),
                "key": _epoch_ms(key),
                "doc_count": docs,
            }
            if sub:
                bucket.update(self.run(sub, f"({where}) AND {bucket_sql} = ?", [*params, key]))
            buckets.append(bucket)
        return {"buckets": buckets}


def _key(value: Any) -> Any:
    if isinstance(value, datetime):
        return _epoch_ms(value)
    return value
