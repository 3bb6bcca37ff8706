"""The engine's own statements: spaces, virtual datasets, reflections, grants, introspection.

Everything else is a query for sqlglot. Both reflection spellings are accepted, Fleuve's short form
(`CREATE REFLECTION r ON t USING DIMENSIONS (...) MEASURES (SUM(x), COUNT(*))`) and Dremio's
(`ALTER TABLE t CREATE AGGREGATE REFLECTION r USING DIMENSIONS (...) MEASURES (x (SUM))`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from fleuve.engine.errors import EngineError
from fleuve.engine.paths import Path
from fleuve.engine.reflections.definition import (
    GRAINS,
    MEASURE_TYPES,
    Dimension,
    Measure,
    ReflectionSpec,
    grain_of,
)

_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
}


# -- statements ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateContainer:
    path: Path
    kind: str  # SPACE or FOLDER
    if_not_exists: bool = False


@dataclass(frozen=True)
class DropContainer:
    path: Path
    kind: str
    if_exists: bool = False


@dataclass(frozen=True)
class CreateView:
    path: Path
    sql: str
    or_replace: bool = False


@dataclass(frozen=True)
class DropView:
    path: Path
    if_exists: bool = False


@dataclass(frozen=True)
class CreateReflection:
    name: str
    dataset: Path
    spec: ReflectionSpec


@dataclass(frozen=True)
class DropReflection:
    name: str
    dataset: Path | None = None


@dataclass(frozen=True)
class AlterReflection:
    name: str
    enabled: bool | None = None
    refresh_policy: str | None = None  # EVERY, MANUAL or ON_CHANGE
    refresh_seconds: int | None = None
    refresh_now: bool = False


@dataclass(frozen=True)
class RefreshReflections:
    dataset: Path


@dataclass(frozen=True)
class GrantStatement:
    privileges: tuple[str, ...]
    path: Path
    recursive: bool
    grantee_kind: str
    grantee: str
    revoke: bool = False


@dataclass(frozen=True)
class RoleStatement:
    role: str
    user: str
    add: bool


@dataclass(frozen=True)
class CreateRole:
    """Roles exist as soon as a user holds one; creating one only checks the caller."""

    name: str


@dataclass(frozen=True)
class ShowGrants:
    path: Path | None = None
    recursive: bool = False
    grantee: str | None = None


@dataclass(frozen=True)
class SetStaleness:
    dataset: Path
    seconds: int | None


@dataclass(frozen=True)
class Promote:
    path: Path
    format: str | None = None


@dataclass(frozen=True)
class Forget:
    path: Path


@dataclass(frozen=True)
class Explain:
    sql: str


@dataclass(frozen=True)
class ShowSchemas:
    like: str | None = None


@dataclass(frozen=True)
class ShowTables:
    path: Path | None = None


@dataclass(frozen=True)
class Describe:
    path: Path | None = None
    sql: str | None = None


@dataclass(frozen=True)
class ShowReflections:
    dataset: Path | None = None


@dataclass(frozen=True)
class Use:
    path: Path


Statement = (
    CreateContainer
    | DropContainer
    | CreateView
    | DropView
    | CreateReflection
    | DropReflection
    | AlterReflection
    | RefreshReflections
    | GrantStatement
    | RoleStatement
    | CreateRole
    | ShowGrants
    | SetStaleness
    | Promote
    | Forget
    | Explain
    | ShowSchemas
    | ShowTables
    | Describe
    | ShowReflections
    | Use
)


def parse(sql: str) -> Statement | None:
    """The engine statement `sql` spells, or None when it is a query for sqlglot."""
    text = sql.strip().rstrip(";").strip()
    first = _FIRST_WORD.match(text)
    if first is not None and first.group(1).upper() not in _STATEMENT_WORDS:
        return None  # SELECT, WITH, INSERT...: no need to tokenize twice
    try:
        tokens = DuckDB().tokenize(text)
        if tokens and tokens[0].token_type == TokenType.COMMAND:
            # EXPLAIN, SHOW, ... swallow the rest as one string: tokenize the rest again.
            head, offset = tokens[0], tokens[0].end + 1
            rest = DuckDB().tokenize(text[offset:])
            tokens = [head] + [_shifted(t, offset) for t in rest]
    except (TokenError, ParseError):
        return None
    if not tokens:
        return None
    return _Parser(text, tokens).statement()


_FIRST_WORD = re.compile(r"([A-Za-z]+)\b")
_STATEMENT_WORDS = {
    "CREATE",
    "DROP",
    "ALTER",
    "GRANT",
    "REVOKE",
    "REFRESH",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "EXPLAIN",
    "USE",
}


def _shifted(t: Token, offset: int) -> Token:
    return Token(t.token_type, t.text, t.line, t.col, t.start + offset, t.end + offset, t.comments)


@dataclass
class _Parser:
    sql: str
    tokens: list[Token]
    i: int = 0
    _syntax: str = field(default="")

    # -- token helpers ----------------------------------------------------------------

    def peek(self, n: int = 0) -> Token | None:
        j = self.i + n
        return self.tokens[j] if j < len(self.tokens) else None

    def next_is(self, kind: TokenType) -> bool:
        t = self.peek()
        return t is not None and t.token_type == kind

    def word(self, n: int = 0) -> str:
        t = self.peek(n)
        if t is None or t.token_type in (TokenType.IDENTIFIER, TokenType.STRING):
            return ""
        return t.text.upper()

    def _match(self, words: tuple[str, ...]) -> int:
        """How many tokens spell `words` from here (some tokens hold two: PARTITION BY); 0: none."""
        want, n = list(words), 0
        while want:
            got = self.word(n).split()
            if not got or got != want[: len(got)]:
                return 0
            want, n = want[len(got) :], n + 1
        return n

    def at(self, *words: str) -> bool:
        return self._match(words) > 0

    def take(self, *words: str) -> bool:
        n = self._match(words)
        self.i += n
        return n > 0

    def expect(self, *words: str) -> None:
        if not self.take(*words):
            self.fail(f"expected {' '.join(words)}")

    def fail(self, problem: str) -> NoReturn:
        t = self.peek()
        where = f" near '{t.text}'" if t else " at the end"
        raise EngineError(
            f"cannot parse the statement: {problem}{where}",
            f"write it as: {self._syntax}" if self._syntax else "check the statement's syntax",
        )

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def end(self) -> None:
        if not self.done():
            self.fail("unexpected text")

    def rest(self) -> str:
        t = self.peek()
        if t is None:
            self.fail("expected a query")
        return self.sql[t.start :].strip()

    def ident(self) -> str:
        t = self.peek()
        if t is None or t.token_type in (
            TokenType.DOT,
            TokenType.COMMA,
            TokenType.L_PAREN,
            TokenType.R_PAREN,
            TokenType.STAR,
            TokenType.SEMICOLON,
            TokenType.STRING,
            TokenType.NUMBER,
        ):
            self.fail("expected a name")
        self.i += 1
        return t.text

    def path(self, *, star: bool = False) -> tuple[Path, bool]:
        parts = [self.ident()]
        while self.next_is(TokenType.DOT):
            self.i += 1
            nxt = self.peek()
            if star and nxt is not None and nxt.token_type == TokenType.STAR:
                self.i += 1
                return tuple(parts), True
            parts.append(self.ident())
        return tuple(parts), False

    def parens(self) -> list[str]:
        """The comma-separated items of a parenthesized list, as raw SQL text."""
        t = self.peek()
        if t is None or t.token_type != TokenType.L_PAREN:
            self.fail("expected '('")
        depth, start, last = 0, None, 0
        items: list[str] = []
        while not self.done():
            t = self.tokens[self.i]
            self.i += 1
            if t.token_type == TokenType.L_PAREN:
                depth += 1
                if depth == 1:
                    start = None
                    continue
            elif t.token_type == TokenType.R_PAREN:
                depth -= 1
                if depth == 0:
                    if start is not None:
                        items.append(self.sql[start : last + 1].strip())
                    return items
            elif t.token_type == TokenType.COMMA and depth == 1:
                if start is not None:
                    items.append(self.sql[start : last + 1].strip())
                start = None
                continue
            if start is None:
                start = t.start
            last = t.end
        self.fail("unbalanced parentheses")
        return items

    def names(self) -> tuple[str, ...]:
        return tuple(_column_name(item) for item in self.parens())

    def interval(self) -> int:
        t = self.peek()
        if t is not None and t.token_type == TokenType.STRING:
            self.i += 1
            amount, _, unit = t.text.strip().partition(" ")
        else:
            if t is None or t.token_type != TokenType.NUMBER:
                self.fail("expected a duration such as 1 HOUR")
            self.i += 1
            amount, unit = t.text, self.ident()
        unit = unit.strip().lower().rstrip("s")
        if unit not in _UNITS or not amount.strip().isdigit() or int(amount) <= 0:
            raise EngineError(
                f"'{amount} {unit}' is not a duration", "write e.g. 30 MINUTES, 1 HOUR or 2 DAYS"
            )
        return int(amount) * _UNITS[unit]

    # -- statements -------------------------------------------------------------------

    def statement(self) -> Statement | None:
        if self.at("CREATE"):
            return self.create()
        if self.at("DROP"):
            return self.drop()
        if self.at("ALTER"):
            return self.alter()
        if self.at("GRANT") or self.at("REVOKE"):
            return self.grant()
        if self.take("REFRESH", "REFLECTION"):
            name = self.ident()
            self.end()
            return AlterReflection(name, refresh_now=True)
        if self.take("SHOW"):
            return self.show()
        if self.at("DESCRIBE") or self.at("DESC"):
            self.i += 1
            return self.describe()
        if self.take("EXPLAIN"):
            self.take("PLAN", "FOR")
            if self.at("ANALYZE"):
                return None
            return Explain(self.rest())
        if self.take("USE"):
            path, _ = self.path()
            self.end()
            return Use(path)
        return None

    def create(self) -> Statement | None:
        self.expect("CREATE")
        or_replace = self.take("OR", "REPLACE")
        if self.at("SPACE") or self.at("FOLDER"):
            kind = self.word()
            self.i += 1
            self._syntax = f"CREATE {kind} [IF NOT EXISTS] name"
            if_not = self.take("IF", "NOT", "EXISTS")
            path, _ = self.path()
            self.end()
            return CreateContainer(path, kind, if_not)
        if self.at("VDS") or self.at("VIEW"):
            self.i += 1
            self._syntax = "CREATE [OR REPLACE] VIEW path AS SELECT ..."
            path, _ = self.path()
            if len(path) < 2:
                raise EngineError(
                    f"a view needs a space: '{path[0]}' has no container",
                    'save it in a space or your home, e.g. CREATE VIEW "My Space".v AS ...',
                )
            self.expect("AS")
            return CreateView(path, self.rest(), or_replace)
        if self.take("REFLECTION"):
            self._syntax = (
                "CREATE REFLECTION r ON dataset USING DISPLAY (c, ...) | "
                "USING DIMENSIONS (d, ...) MEASURES (SUM(x), COUNT(*), ...)"
            )
            name = self.ident()
            self.expect("ON")
            dataset, _ = self.path()
            self.expect("USING")
            return CreateReflection(name, dataset, self.reflection_body(None))
        if self.take("ROLE"):
            name = self.ident()
            self.end()
            return CreateRole(name)
        return None

    def reflection_body(self, kind: str | None) -> ReflectionSpec:
        if self.take("DISPLAY"):
            if kind == "AGGREGATION":
                self.fail("an aggregate reflection takes DIMENSIONS and MEASURES")
            display = self.names()
            partition, sort = self.partition_sort()
            return ReflectionSpec("RAW", display=display, partition=partition, sort=sort)
        if kind == "RAW":
            self.fail("a raw reflection takes DISPLAY (...)")
        dims: tuple[Dimension, ...] = ()
        measures: list[Measure] = []
        if self.take("DIMENSIONS"):
            dims = tuple(_dimension(item) for item in self.parens())
        if self.take("MEASURES"):
            measures = _measures(self.parens())
        if not dims and not measures:
            self.fail("expected DISPLAY, DIMENSIONS or MEASURES")
        partition, sort = self.partition_sort()
        return ReflectionSpec(
            "AGGREGATION",
            dimensions=dims,
            measures=tuple(measures),
            partition=partition,
            sort=sort,
        )

    def partition_sort(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        partition: tuple[str, ...] = ()
        sort: tuple[str, ...] = ()
        while not self.done():
            if self.take("PARTITION", "BY"):
                partition = self.names()
            elif self.take("LOCALSORT", "BY") or self.take("SORT", "BY"):
                sort = self.names()
            elif self.take("DISTRIBUTE", "BY"):
                self.names()
            else:
                self.fail("unexpected text after the reflection's columns")
        return partition, sort

    def drop(self) -> Statement | None:
        self.expect("DROP")
        if self.at("SPACE") or self.at("FOLDER"):
            kind = self.word()
            self.i += 1
            if_exists = self.take("IF", "EXISTS")
            path, _ = self.path()
            self.end()
            return DropContainer(path, kind, if_exists)
        if self.at("VDS") or self.at("VIEW"):
            self.i += 1
            if_exists = self.take("IF", "EXISTS")
            path, _ = self.path()
            self.end()
            return DropView(path, if_exists)
        if self.take("REFLECTION"):
            name = self.ident()
            self.end()
            return DropReflection(name)
        return None

    def alter(self) -> Statement | None:
        self.expect("ALTER")
        if self.take("REFLECTION"):
            self._syntax = (
                "ALTER REFLECTION r SET REFRESH EVERY 1 HOUR | SET REFRESH MANUAL | "
                "SET REFRESH ON CHANGE | SET ENABLED = TRUE|FALSE | REFRESH"
            )
            name = self.ident()
            if self.take("REFRESH"):
                self.end()
                return AlterReflection(name, refresh_now=True)
            self.expect("SET")
            if self.take("ENABLED"):
                self.take("=")
                if self.next_is(TokenType.EQ):
                    self.i += 1
                value = self.word()
                if value not in ("TRUE", "FALSE"):
                    self.fail("expected TRUE or FALSE")
                self.i += 1
                self.end()
                return AlterReflection(name, enabled=value == "TRUE")
            self.expect("REFRESH")
            if self.take("EVERY"):
                seconds = self.interval()
                self.end()
                return AlterReflection(name, refresh_policy="EVERY", refresh_seconds=seconds)
            if self.take("MANUAL") or self.take("NEVER"):
                self.end()
                return AlterReflection(name, refresh_policy="MANUAL")
            if self.take("ON", "CHANGE"):
                self.end()
                return AlterReflection(name, refresh_policy="ON_CHANGE")
            self.fail("expected EVERY, MANUAL or ON CHANGE")
        if not any(self.at(w) for w in ("TABLE", "VIEW", "VDS", "PDS", "DATASET")):
            return None
        self.i += 1
        self._syntax = (
            "ALTER TABLE t CREATE AGGREGATE REFLECTION r USING DIMENSIONS (...) MEASURES (...) | "
            "ALTER TABLE t CREATE RAW REFLECTION r USING DISPLAY (...) | "
            "ALTER TABLE t DROP REFLECTION r | ALTER TABLE t REFRESH REFLECTIONS | "
            "ALTER TABLE t SET STALENESS 1 HOUR | ALTER TABLE t REFRESH METADATA"
        )
        dataset, _ = self.path()
        if self.take("CREATE"):
            kind = "AGGREGATION" if self.take("AGGREGATE") else None
            if kind is None and self.take("RAW"):
                kind = "RAW"
            if kind is None:
                self.fail("expected AGGREGATE or RAW")
            self.expect("REFLECTION")
            name = self.ident()
            self.expect("USING")
            return CreateReflection(name, dataset, self.reflection_body(kind))
        if self.take("DROP", "REFLECTION"):
            name = self.ident()
            self.end()
            return DropReflection(name, dataset)
        if self.take("REFRESH", "REFLECTIONS"):
            self.end()
            return RefreshReflections(dataset)
        if self.take("REFRESH", "METADATA"):
            fmt = None
            while not self.done():
                if self.take("FORMAT"):
                    fmt = self.ident().lower()
                elif self.take("AUTO", "PROMOTION") or self.take("FORCE", "UPDATE"):
                    continue
                else:
                    self.fail("unexpected text")
            return Promote(dataset, fmt)
        if self.take("FORGET", "METADATA"):
            self.end()
            return Forget(dataset)
        if self.take("SET", "STALENESS"):
            if self.take("NONE"):
                self.end()
                return SetStaleness(dataset, None)
            seconds = self.interval()
            self.end()
            return SetStaleness(dataset, seconds)
        self.fail("unknown ALTER action")
        return None

    def grant(self) -> Statement:
        revoke = self.word() == "REVOKE"
        self.i += 1
        self._syntax = (
            "GRANT SELECT|ALL ON [TABLE|VIEW|SCHEMA|SPACE|SOURCE|FOLDER] path[.*] "
            "TO [ROLE|USER] name  (REVOKE ... FROM ...); GRANT ROLE r TO USER u; "
            "GRANT privilege[, ...] ON SYSTEM TO [ROLE|USER] name"
        )
        if self.take("ROLE"):
            role = self.ident()
            self.expect("FROM" if revoke else "TO")
            self.take("USER")
            user = self.ident()
            self.end()
            return RoleStatement(role, user, add=not revoke)
        privileges = []
        while True:
            # A privilege is one word or several (MANAGE GRANTS, ALTER REFLECTION).
            words = []
            while (
                self.word()
                and not self.next_is(TokenType.COMMA)
                and not self.at("ON")
                and not self.at("PRIVILEGES")
            ):
                words.append(self.word())
                self.i += 1
            if not words:
                self.fail("expected a privilege (SELECT, ALL, or a system privilege)")
            self.take("PRIVILEGES")
            privileges.append(" ".join(words))
            if not self.next_is(TokenType.COMMA):
                break
            self.i += 1
        self.expect("ON")
        recursive = False
        path: Path
        if self.at("SYSTEM", "FROM" if revoke else "TO"):
            # Privileges to operate the platform: the object is the system itself (no path).
            self.i += 1
            path, star = (), False
        else:
            if any(self.at(w) for w in ("SCHEMA", "SPACE", "SOURCE", "FOLDER", "PROJECT")):
                recursive = True
                self.i += 1
            elif any(self.at(w) for w in ("TABLE", "VIEW", "VDS", "PDS", "DATASET")):
                self.i += 1
            path, star = self.path(star=True)
        self.expect("FROM" if revoke else "TO")
        kind = "USER" if self.take("USER") else "ROLE"
        self.take("ROLE")
        grantee = self.ident()
        self.end()
        return GrantStatement(tuple(privileges), path, recursive or star, kind, grantee, revoke)

    def show(self) -> Statement | None:
        if self.take("SCHEMAS") or self.take("DATABASES"):
            like = None
            if self.take("LIKE"):
                t = self.peek()
                like = t.text if t is not None else None
                self.i += 1
            self.end()
            return ShowSchemas(like)
        if self.take("TABLES"):
            path = None
            if self.take("IN") or self.take("FROM"):
                path, _ = self.path()
            self.end()
            return ShowTables(path)
        if self.take("REFLECTIONS"):
            path = None
            if self.take("ON") or self.take("FOR") or self.take("IN"):
                path, _ = self.path()
            self.end()
            return ShowReflections(path)
        if self.take("GRANTS"):
            path, recursive, grantee = None, False, None
            while not self.done():
                if self.take("ON"):
                    if any(self.at(w) for w in ("SCHEMA", "SPACE", "SOURCE", "FOLDER")):
                        recursive = True
                        self.i += 1
                    elif any(self.at(w) for w in ("TABLE", "VIEW", "DATASET")):
                        self.i += 1
                    path, star = self.path(star=True)
                    recursive = recursive or star
                elif self.take("FOR") or self.take("TO"):
                    self.take("USER") or self.take("ROLE")
                    grantee = self.ident()
                else:
                    self.fail("expected ON or FOR")
            return ShowGrants(path, recursive, grantee)
        return None

    def describe(self) -> Statement:
        self.take("TABLE") or self.take("VIEW")
        t = self.peek()
        if t is None:
            self.fail("expected a dataset")
        if t.token_type in (TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN):
            return Describe(sql=self.rest())
        path, _ = self.path()
        self.end()
        return Describe(path=path)


def _column_name(item: str) -> str:
    try:
        node = sqlglot.parse_one(item, read="duckdb")
    except ParseError:
        raise EngineError(f"'{item}' is not a column name", "list plain column names") from None
    if not isinstance(node, exp.Column) or node.table:
        raise EngineError(f"'{item}' is not a column name", "list plain column names")
    return node.name


def _dimension(item: str) -> Dimension:
    m = re.fullmatch(r'(?is)\s*("(?:[^"]|"")+"|[^\s"]+)\s+BY\s+(\w+)\s*', item)
    if m:
        grain = m.group(2).lower()
        grain = "day" if grain == "date" else grain
        if grain not in GRAINS:
            raise EngineError(
                f"unknown time grain '{m.group(2)}'", f"use one of: {', '.join(GRAINS)}"
            )
        return Dimension(_column_name(m.group(1)), grain)
    try:
        node = sqlglot.parse_one(item, read="duckdb")
    except ParseError:
        node = None
    if isinstance(node, exp.Alias):
        node = node.this
    if isinstance(node, exp.Column) and not node.table:
        return Dimension(node.name, None)
    trunc = grain_of(node) if node is not None else None
    if trunc is not None:
        return Dimension(trunc[1], trunc[0])
    raise EngineError(
        f"dimension '{item}' is neither a column nor date_trunc('<grain>', column)",
        "use a column name, `column BY DAY`, or date_trunc('day', column)",
    )


def _measures(items: list[str]) -> list[Measure]:
    by_column: dict[str, list[str]] = {}

    def add(column: str, kind: str) -> None:
        kinds = by_column.setdefault(column, [])
        if kind not in kinds:
            kinds.append(kind)

    for item in items:
        m = re.fullmatch(r'(?s)\s*("(?:[^"]|"")+"|[^\s("]+)\s*\((.*)\)\s*', item)
        if not m:
            raise EngineError(
                f"measure '{item}' is not understood",
                "write SUM(x), COUNT(*), AVG(x), MIN(x), MAX(x), APPROX_COUNT_DISTINCT(x) "
                "or x (SUM, COUNT)",
            )
        head, inner = m.group(1), m.group(2).strip()
        words = [w.strip().upper() for w in inner.split(",")]
        if all(w in (*MEASURE_TYPES, "AVG") for w in words) and inner:
            column = _column_name(head)
            for w in words:
                for kind in ("SUM", "COUNT") if w == "AVG" else (w,):
                    add(column, kind)
            continue
        fn = head.upper()
        if fn == "COUNT" and inner == "*":
            add("*", "COUNT")
            continue
        if inner.upper().startswith("DISTINCT "):
            raise EngineError(
                f"'{item}' cannot be kept by a reflection",
                "use APPROX_COUNT_DISTINCT(x); it also answers COUNT(DISTINCT x) exactly",
            )
        if fn not in (*MEASURE_TYPES, "AVG"):
            raise EngineError(
                f"'{fn}' is not a reflection measure",
                "use SUM, COUNT, AVG, MIN, MAX or APPROX_COUNT_DISTINCT",
            )
        column = _column_name(inner)
        for kind in ("SUM", "COUNT") if fn == "AVG" else (fn,):
            add(column, kind)
    return [Measure(c, tuple(k)) for c, k in by_column.items()]
