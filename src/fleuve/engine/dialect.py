"""From a user's SQL dialect to the DuckDB SQL that runs: what carries over, what is refused.

Each function of a query either reaches DuckDB with the meaning its dialect gives it, or the
query is refused with an error naming the function. Three steps keep that promise:

1. `translate` (after parsing): rewrites the functions whose meaning differs between the
   dialect and DuckDB (Dremio's `TO_CHAR` format strings, `DAYOFWEEK` from 1, `TIMESTAMPDIFF`
   in whole units, ...) and, for Dremio SQL, refuses every function outside `DREMIO_FUNCTIONS`.
2. `settle` (after the tables are bound): Dremio's date arithmetic keeps a DATE a DATE; where
   that depends on a column's type, the column's type decides.
3. `to_duckdb` (generation): anything sqlglot cannot carry to DuckDB is an error, never a
   warning on the server's log with a cast in its place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.helper import seq_get
from sqlglot.tokens import Token, TokenType

from fleuve.engine.errors import EngineError

DOCS = "see 'SQL dialects' in docs/engine.md"

# Dremio's date/time format elements (case-insensitive) and their strftime/strptime codes.
# Longest first, so MONTH wins over MON and MM, DDD over DD, HH24 over HH.
FORMAT_ELEMENTS: tuple[tuple[str, str], ...] = (
    ("YYYY", "%Y"),
    ("MONTH", "%B"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("DDD", "%j"),
    ("DAY", "%A"),
    ("FFF", "%g"),
    ("MON", "%b"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("DY", "%a"),
    ("HH", "%I"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("AM", "%p"),
    ("PM", "%p"),
)
FORMAT_NAMES = ", ".join(e for e, _ in FORMAT_ELEMENTS)
_NUMERIC_FORMAT = re.compile(r"^[#0.,]+$")


def strftime_format(fmt: str, function: str) -> str:
    """A Dremio (and PostgreSQL-style) date/time format string as DuckDB strftime codes."""
    out: list[str] = []
    i = 0
    upper = fmt.upper()
    while i < len(fmt):
        ch = fmt[i]
        if ch == '"':
            end = fmt.find('"', i + 1)
            if end < 0:
                raise EngineError(
                    f"{function} format {fmt!r} has an unclosed quoted text",
                    'close the quoted text with "',
                )
            out.append(fmt[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if not ch.isalpha():
            out.append("%%" if ch == "%" else ch)
            i += 1
            continue
        for element, code in FORMAT_ELEMENTS:
            if upper.startswith(element, i):
                out.append(code)
                i += len(element)
                break
        else:
            word = re.match(r"[A-Za-z0-9]+", fmt[i:])
            raise EngineError(
                f"{function} format element '{word.group(0) if word else ch}' in {fmt!r} "
                "is not supported",
                f"use the elements {FORMAT_NAMES}; put literal text in double quotes",
            )
    return "".join(out)


# Functions sqlglot misreads, per dialect. Dremio's: TO_CHAR and TO_DATE with its own reading
# of the format string, TIMESTAMPDIFF with its arguments shifted, DATE_DIFF and DATE_FORMAT as
# other functions. DuckDB's: decode(blob, charset) loses its charset, jaro_winkler_similarity's
# score cutoff becomes an upper-casing, time_bucket's origin loses its quoting, approx_top_k
# is refused as if it came from another dialect. They are
# renamed before parsing and reach the rewrites (or DuckDB) with their arguments as written.
_RENAME = {
    "dremio": {"TO_CHAR", "TO_DATE", "TIMESTAMPDIFF", "DATE_DIFF", "DATE_FORMAT"},
    "duckdb": {"APPROX_TOP_K", "DECODE", "JARO_WINKLER_SIMILARITY", "TIME_BUCKET"},
}
_RENAMED = "FLEUVE_RENAMED__"
# DuckDB functions whose date part sqlglot reads as a keyword: a column there would become a
# constant part named like the column.
_PART_FIRST = {"DATE_TRUNC", "DATETRUNC", "DATE_DIFF", "DATEDIFF"}


# Typed literals (DATE '...', TIME '...', TIMESTAMP '...') whose text DuckDB would cut
# without a word: a DATE's time of day, a zone offset on a value without time zone, digits
# below the microsecond.
_TYPED_LITERALS = {
    TokenType.DATE,
    TokenType.TIME,
    TokenType.TIMESTAMP,
    TokenType.TIMESTAMPNTZ,
    TokenType.DATETIME,
}
_ZONE = re.compile(
    r"\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:Z|UTC|GMT|[+-]\d{1,2}(?::?\d\d)?|[A-Za-z]+/\w+)\s*$"
)
_SUB_MICRO = re.compile(r"\.\d{7,}")


def _check_typed_literal(kind: str, text: str) -> None:
    """Refuse a typed literal whose text holds more than its type keeps."""
    literal = f"{kind} '{text}'"
    if kind == "DATE" and ":" in text:
        raise EngineError(
            f"{literal} has a time of day, which a DATE does not keep",
            f"write TIMESTAMP '{text}', or the date alone",
        )
    if kind != "DATE" and _ZONE.search(text):
        raise EngineError(
            f"{literal} has a time zone, which a {kind} without time zone would drop",
            "write TIMESTAMPTZ '...' for an instant, or the local time without its zone",
        )
    if kind != "DATE" and _SUB_MICRO.search(text):
        raise EngineError(
            f"{literal} has digits below the microsecond, which Fleuve does not keep",
            "write at most 6 digits after the seconds' point",
        )


def parse(sql: str, dialect: str) -> list[exp.Expr | None]:
    """The statements of `sql` read as `dialect` (duckdb or dremio); sqlglot's ParseError."""
    reader = Dialect.get_or_raise(dialect)
    tokens = reader.tokenize(sql)
    rename = _RENAME.get(dialect, set())
    intervals = False
    for i, token in enumerate(tokens[:-1]):
        after = tokens[i + 1]
        if token.token_type == TokenType.INTERVAL:
            intervals = True
        elif token.token_type in _TYPED_LITERALS and after.token_type == TokenType.STRING:
            _check_typed_literal(token.text.upper(), after.text)
        elif token.token_type == TokenType.VAR and after.token_type == TokenType.L_PAREN:
            name = token.text.upper()
            first = tokens[i + 2] if i + 2 < len(tokens) else None
            if name in rename:
                token.text = _RENAMED + name
            elif (
                dialect == "duckdb"
                and name in _PART_FIRST
                and first is not None
                and first.token_type != TokenType.STRING
            ):
                raise EngineError(
                    f"function {name} takes its date part as a quoted literal here",
                    f"write {name.lower()}('month', ...); for a part from a column, use CASE",
                )
    if intervals:
        tokens = _interval_tokens(tokens)
    return reader.parser().parse(tokens, sql)


# == interval literals =====================================================================
#
# sqlglot reads INTERVAL '3 days 04:05:06.789' as 3 days (the time is dropped) and leaves
# INTERVAL '3 04:05:06.789' DAY TO SECOND to DuckDB, which does not take it. So each literal
# interval is read here, from its tokens, with the SQL standard's meaning (Dremio's) when it
# names its unit, and reaches DuckDB as one string DuckDB reads exactly.

# Each unit as (field, multiple): months, days or microseconds, DuckDB's interval fields.
INTERVAL_UNITS: dict[str, tuple[str, int]] = {
    "MILLENNIUM": ("months", 12_000),
    "CENTURY": ("months", 1_200),
    "DECADE": ("months", 120),
    "YEAR": ("months", 12),
    "QUARTER": ("months", 3),
    "MONTH": ("months", 1),
    "WEEK": ("days", 7),
    "DAY": ("days", 1),
    "HOUR": ("micros", 3_600_000_000),
    "MINUTE": ("micros", 60_000_000),
    "SECOND": ("micros", 1_000_000),
    "MILLISECOND": ("micros", 1_000),
    "MICROSECOND": ("micros", 1),
}
_SIGN = r"\s*(?P<sign>[-+]?)\s*"
_SECONDS = r"(?P<second>\d+(?:\.\d+)?)"
# The text each span takes (SQL standard): its leading field any size, the others in range.
INTERVAL_SPANS: dict[tuple[str, str], re.Pattern[str]] = {
    ("YEAR", "MONTH"): re.compile(_SIGN + r"(?P<year>\d+)-(?P<month>\d+)\s*$"),
    ("DAY", "HOUR"): re.compile(_SIGN + r"(?P<day>\d+)\s+(?P<hour>\d+)\s*$"),
    ("DAY", "MINUTE"): re.compile(_SIGN + r"(?P<day>\d+)\s+(?P<hour>\d+):(?P<minute>\d+)\s*$"),
    ("DAY", "SECOND"): re.compile(
        _SIGN + r"(?P<day>\d+)\s+(?P<hour>\d+):(?P<minute>\d+):" + _SECONDS + r"\s*$"
    ),
    ("HOUR", "MINUTE"): re.compile(_SIGN + r"(?P<hour>\d+):(?P<minute>\d+)\s*$"),
    ("HOUR", "SECOND"): re.compile(_SIGN + r"(?P<hour>\d+):(?P<minute>\d+):" + _SECONDS + r"\s*$"),
    ("MINUTE", "SECOND"): re.compile(_SIGN + r"(?P<minute>\d+):" + _SECONDS + r"\s*$"),
}
_SINGLE = re.compile(_SIGN + r"(?P<whole>\d+)(?P<fraction>\.\d*)?\s*$")
_LIMITS = {"month": 12, "hour": 24, "minute": 60, "second": 60}
_INTERVAL_FN = _RENAMED + "INTERVAL"
_INTERVAL_FIX = (
    "write INTERVAL '3' DAY, INTERVAL '1-2' YEAR TO MONTH, "
    "INTERVAL '3 04:05:06.789' DAY TO SECOND or INTERVAL '3 days 04:05:06.789'"
)


def _interval_unit(token: Token | None) -> str | None:
    """The unit a token names (singular), or None when it names none."""
    if token is None or token.token_type != TokenType.VAR:
        return None
    word = token.text.upper()
    if word in INTERVAL_UNITS:
        return word
    if word.endswith("S") and word[:-1] in INTERVAL_UNITS:
        return word[:-1]
    return None


def _interval_error(literal: str, problem: str) -> EngineError:
    return EngineError(f"interval literal {literal} {problem}", _INTERVAL_FIX)


def interval_text(value: str, negate: bool, units: Sequence[str], literal: str) -> str:
    """DuckDB's exact text for an interval written with its units: '1 year 2 months', ..."""
    if len(units) == 1:
        unit = units[0]
        match = _SINGLE.match(value)
        if match is None:
            raise _interval_error(literal, f"does not hold one number of {unit}S")
        fraction = (match["fraction"] or ".")[1:]
        if fraction.strip("0") and unit != "SECOND":
            # DuckDB drops the fraction (INTERVAL '1.5' DAY is 1 day), Dremio refuses it.
            raise _interval_error(literal, f"has a fraction of a {unit}; only SECOND takes one")
        field_name, multiple = INTERVAL_UNITS[unit]
        amount = int(match["whole"]) * multiple
        if fraction.strip("0"):
            scaled = int(fraction) * multiple
            if scaled % 10 ** len(fraction):
                raise _interval_error(literal, "is finer than a microsecond")
            amount += scaled // 10 ** len(fraction)
        parts = {"months": 0, "days": 0, "micros": 0, field_name: amount}
    else:
        pattern = INTERVAL_SPANS.get((units[0], units[1]))
        if pattern is None:
            spans = ", ".join(f"{a} TO {b}" for a, b in INTERVAL_SPANS)
            raise EngineError(
                f"interval literal {literal}: {units[0]} TO {units[1]} is not an interval span",
                f"use one of {spans}",
            )
        match = pattern.match(value)
        if match is None:
            raise _interval_error(literal, f"does not match {units[0]} TO {units[1]}")
        fields = {k: v for k, v in match.groupdict().items() if v is not None and k != "sign"}
        for name, limit in _LIMITS.items():
            if name in fields and name != units[0].lower() and float(fields[name]) >= limit:
                raise _interval_error(literal, f"has {fields[name]} {name}s, above {limit - 1}")
        seconds = fields.get("second", "0")
        whole, _, fraction = seconds.partition(".")
        if len(fraction.rstrip("0")) > 6:
            raise _interval_error(literal, "is finer than a microsecond")
        micros = (
            (int(fields.get("hour", 0)) * 60 + int(fields.get("minute", 0))) * 60 + int(whole)
        ) * 1_000_000 + int((fraction.rstrip("0") or "0").ljust(6, "0"))
        parts = {
            "months": int(fields.get("year", 0)) * 12 + int(fields.get("month", 0)),
            "days": int(fields.get("day", 0)),
            "micros": micros,
        }
    # The SQL standard's sign, inside the text or before it, applies to every field.
    negate = negate != (match["sign"] == "-")
    return _duckdb_interval(parts["months"], parts["days"], parts["micros"], negate)


def _duckdb_interval(months: int, days: int, micros: int, negate: bool) -> str:
    """'14 months 3 days 04:05:06.789', each field negated when `negate`."""
    sign = "-" if negate else ""
    out = []
    if months:
        out.append(f"{sign}{months} months")
    if days:
        out.append(f"{sign}{days} days")
    if micros or not out:
        seconds, fraction = divmod(micros, 1_000_000)
        minutes, second = divmod(seconds, 60)
        hours, minute = divmod(minutes, 60)
        clock = f"{hours:02d}:{minute:02d}:{second:02d}"
        if fraction:
            clock += "." + f"{fraction:06d}".rstrip("0")
        out.append(sign + clock)
    return " ".join(out)


def _interval_tokens(tokens: list[Token]) -> list[Token]:
    """Each literal INTERVAL as a call carrying DuckDB's exact text for it (see above)."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        j = i + 1
        negate = False
        if j < len(tokens) and tokens[j].token_type in (TokenType.DASH, TokenType.PLUS):
            negate = tokens[j].token_type == TokenType.DASH
            j += 1
        value = tokens[j] if j < len(tokens) else None
        if (
            token.token_type != TokenType.INTERVAL
            or value is None
            or value.token_type not in (TokenType.STRING, TokenType.NUMBER)
        ):
            out.append(token)
            i += 1
            continue
        quoted = value.token_type == TokenType.STRING
        literal_end = j + 1
        units: list[str] = []
        first = _interval_unit(seq_get(tokens, j + 1))
        if first is not None:
            units.append(first)
            literal_end = j + 2
            to = seq_get(tokens, j + 2)
            if to is not None and to.token_type == TokenType.VAR and to.text.upper() == "TO":
                second = _interval_unit(seq_get(tokens, j + 3))
                if second is None:
                    raise _interval_error(_quote(tokens, i, j + 4), "has no unit after TO")
                units.append(second)
                literal_end = j + 4
        literal = _quote(tokens, i, literal_end)
        after = seq_get(tokens, literal_end)
        if after is not None and after.token_type == TokenType.VAR and not units:
            raise EngineError(
                f"interval unit '{after.text}' in {literal} {after.text} is not supported",
                f"use one of {', '.join(INTERVAL_UNITS)}, or {_INTERVAL_FIX}",
            )
        if after is not None and after.token_type in (TokenType.STRING, TokenType.NUMBER):
            raise _interval_error(literal, "is followed by another value")
        if units:
            text = interval_text(value.text, negate, units, literal)
        elif not quoted:
            raise _interval_error(literal, "has no unit")
        else:
            # DuckDB reads a text without units ('1 day 2 hours'); the sign stays outside.
            text = value.text
        out.append(_token_like(token, TokenType.VAR, _INTERVAL_FN))
        out.append(_token_like(token, TokenType.L_PAREN, "("))
        if negate and not units:
            out.append(_token_like(token, TokenType.DASH, "-"))
        out.append(_token_like(value, TokenType.STRING, text))
        out.append(_token_like(value, TokenType.R_PAREN, ")"))
        i = literal_end
    return out


def _quote(tokens: list[Token], start: int, end: int) -> str:
    """The tokens `start` to `end` as written, for an error message."""
    words = []
    for t in tokens[start:end]:
        words.append(f"'{t.text}'" if t.token_type == TokenType.STRING else t.text)
    return " ".join(words).replace("- ", "-")


def _token_like(where: Token, kind: TokenType, text: str) -> Token:
    return Token(kind, text, where.line, where.col, where.start, where.end)


def _interval(node: exp.Anonymous) -> exp.Expr:
    """The call `_interval_tokens` made, as the interval DuckDB reads."""
    arg = node.expressions[0]
    if isinstance(arg, exp.Neg):
        return exp.Neg(this=exp.Interval(this=arg.this))
    return exp.Interval(this=arg)


def _restore(node: exp.Expr) -> exp.Expr | None:
    """A function renamed by `parse`, back under its own name."""
    if not isinstance(node, exp.Anonymous) or not node.name.upper().startswith(_RENAMED):
        return None
    name = node.name.upper().removeprefix(_RENAMED)
    args = node.expressions
    if name == "INTERVAL":
        return _interval(node)
    if name == "TO_CHAR":
        return exp.ToChar(this=seq_get(args, 0), format=seq_get(args, 1))
    return exp.Anonymous(this=name, expressions=args)


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    """A call of DuckDB function `name`."""
    return exp.Anonymous(this=name, expressions=list(args))


def _format_text(fmt: exp.Expr | None, function: str) -> str:
    """The text of a format argument, which must be a string literal."""
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        raise EngineError(
            f"{function} needs its format as a string literal",
            "write the format in quotes, e.g. 'YYYY-MM-DD'",
        )
    return fmt.this


def _to_char(node: exp.Expr, fmt: str) -> exp.Expr:
    if _NUMERIC_FORMAT.match(fmt):
        raise EngineError(
            f"TO_CHAR with the number format {fmt!r} is not supported",
            "use CAST(x AS VARCHAR), ROUND(x, n) or printf('%.2f', x)",
        )
    value = node.this
    if isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.TIME):
        value = _on_epoch_day(value)
    out = _fn("strftime", value, exp.Literal.string(strftime_format(fmt, "TO_CHAR")))
    if isinstance(value, exp.Column):
        out.meta["fleuve_settle"] = "TO_CHAR"  # a TIME column is known once the tables are
    return out


def _on_epoch_day(time_of_day: exp.Expr) -> exp.Expr:
    """A time of day as a timestamp, since DuckDB's strftime formats timestamps only."""
    return exp.Add(this=exp.cast(exp.Literal.string("1970-01-01"), "DATE"), expression=time_of_day)


def _parse_time(value: exp.Expr, fmt: str, function: str, to: str | None) -> exp.Expr:
    parsed = _fn("strptime", value, exp.Literal.string(strftime_format(fmt, function)))
    return exp.cast(parsed, to) if to else parsed


# == rewrites shared by both dialects: functions DuckDB lacks or reads differently ==========


def _shared(node: exp.Expr) -> exp.Expr | None:
    """TO_CHAR / TO_DATE / TO_TIMESTAMP with Dremio (PostgreSQL-style) formats, in any dialect."""
    if isinstance(node, exp.ToChar) and node.args.get("format") is not None:
        return _to_char(node, _format_text(node.args.get("format"), "TO_CHAR"))
    if isinstance(node, exp.ToChar):
        return exp.cast(node.this, "VARCHAR")
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        args = node.expressions
        if name in ("TO_DATE", "TO_TIMESTAMP", "TO_TIME") and len(args) == 2:
            fmt = _format_text(args[1], name)
            to = {"TO_DATE": "DATE", "TO_TIMESTAMP": None, "TO_TIME": "TIME"}[name]
            return _parse_time(args[0], fmt, name, to)
    if isinstance(node, exp.UnixToTime):
        scale = node.args.get("scale")
        if isinstance(scale, exp.Literal) and scale.is_string:
            # DuckDB's parser reads TO_TIMESTAMP(text, format) as epoch / 10^format.
            return _parse_time(node.this, scale.this, "TO_TIMESTAMP", None)
    return None


# == Dremio ================================================================================

# Every function of Dremio's SQL reference that Fleuve knows, by category. None: it runs with
# the result Dremio documents (tests/engine/corpus/functions.sql holds a case for each);
# otherwise the reason it is refused and what to write instead.
DREMIO_FUNCTIONS: dict[str, dict[str, str | None]] = {
    "String": {
        "ASCII": None,
        "BASE64": None,
        "BIT_LENGTH": None,
        "BTRIM": None,
        "CHAR_LENGTH": None,
        "CHARACTER_LENGTH": None,
        "CHR": None,
        "CONCAT": None,
        "CONCAT_WS": None,
        "ENDS_WITH": None,
        "INITCAP": None,
        "LCASE": None,
        "LEFT": None,
        "LENGTH": None,
        "LEVENSHTEIN": None,
        "LOCATE": None,
        "LOWER": None,
        "LPAD": None,
        "LTRIM": None,
        "OCTET_LENGTH": None,
        "POSITION": None,
        "REGEXP_EXTRACT": None,
        "REGEXP_LIKE": None,
        "REGEXP_MATCHES": None,
        "REGEXP_REPLACE": None,
        "REPEAT": None,
        "REPEATSTR": None,
        "REPLACE": None,
        "REVERSE": None,
        "RIGHT": None,
        "RPAD": None,
        "RTRIM": None,
        "SPLIT_PART": None,
        "STARTS_WITH": None,
        "STRPOS": None,
        "SUBSTR": None,
        "SUBSTRING": None,
        "TRANSLATE": None,
        "TRIM": None,
        "UCASE": None,
        "UNBASE64": None,
        "UPPER": None,
        "CONTAINS": "it searches Elasticsearch sources; use LIKE '%text%' or STRPOS(s, 'text') > 0",
        "REGEXP_SPLIT": "its keyword modes are not carried; use string_split_regex in the duckdb dialect",
        "SOUNDEX": "DuckDB has no SOUNDEX; compare with LEVENSHTEIN instead",
        "SUBSTRING_INDEX": "use SPLIT_PART(s, delimiter, n)",
        "TOASCII": "use the duckdb dialect's strip_accents(s)",
        "MASK": "use REGEXP_REPLACE(s, '[A-Za-z]', 'X') or a virtual dataset that hides the column",
    },
    "Date/time": {
        "CONVERT_TIMEZONE": None,
        "CURRENT_DATE": None,
        "CURRENT_TIMESTAMP": None,
        "DATE_ADD": None,
        "DATE_PART": None,
        "DATE_SUB": None,
        "DATE_TRUNC": None,
        "DATEDIFF": None,
        "DATETYPE": None,
        "DAY": None,
        "DAYOFMONTH": None,
        "DAYOFWEEK": None,
        "DAYOFYEAR": None,
        "EXTRACT": None,
        "HOUR": None,
        "LAST_DAY": None,
        "MINUTE": None,
        "MONTH": None,
        "MONTHS_BETWEEN": None,
        "NEXT_DAY": None,
        "NOW": None,
        "QUARTER": None,
        "SECOND": None,
        "TIMESTAMPADD": None,
        "TIMESTAMPDIFF": None,
        "TO_CHAR": None,
        "TO_DATE": None,
        "TO_TIME": None,
        "TO_TIMESTAMP": None,
        "UNIX_TIMESTAMP": None,
        "WEEK": None,
        "WEEKOFYEAR": None,
        "YEAR": None,
        "DATE_DIFF": "Dremio's DATE_DIFF subtracts an interval; use DATE_SUB, or DATEDIFF(end, start) for days",
        "TIMESTAMPTYPE": "use CAST('2024-01-31 10:00:00' AS TIMESTAMP)",
        "TIMETYPE": "use CAST('10:00:00' AS TIME)",
    },
    "Math": {
        "ABS": None,
        "ACOS": None,
        "ASIN": None,
        "ATAN": None,
        "ATAN2": None,
        "CBRT": None,
        "CEIL": None,
        "CEILING": None,
        "COS": None,
        "COSH": None,
        "COT": None,
        "DEGREES": None,
        "E": None,
        "EXP": None,
        "FLOOR": None,
        "LN": None,
        "LOG": None,
        "LOG10": None,
        "MOD": None,
        "PI": None,
        "POW": None,
        "POWER": None,
        "RADIANS": None,
        "RANDOM": None,
        "ROUND": None,
        "SIGN": None,
        "SIN": None,
        "SINH": None,
        "SQRT": None,
        "TAN": None,
        "TANH": None,
        "TRUNC": None,
        "TRUNCATE": None,
    },
    "Conditional": {
        "CASE": None,
        "COALESCE": None,
        "GREATEST": None,
        "ISNULL": None,
        "LEAST": None,
        "NULLIF": None,
        "NVL": None,
    },
    "Conversion": {
        "CAST": None,
        "TO_NUMBER": None,
        "CONVERT_FROM": "binary encodings are not carried; use CAST(b AS VARCHAR) or decode(b)",
        "CONVERT_TO": "binary encodings are not carried; use encode(s)",
        "HEX": None,
        "UNHEX": None,
    },
    "Aggregate": {
        "APPROX_COUNT_DISTINCT": None,
        "ARRAY_AGG": None,
        "AVG": None,
        "BIT_AND": None,
        "BIT_OR": None,
        "BOOL_AND": None,
        "BOOL_OR": None,
        "CORR": None,
        "COUNT": None,
        "COVAR_POP": None,
        "COVAR_SAMP": None,
        "LISTAGG": None,
        "MAX": None,
        "MEDIAN": None,
        "MIN": None,
        "NDV": None,
        "PERCENTILE_CONT": None,
        "PERCENTILE_DISC": None,
        "STDDEV": None,
        "STDDEV_POP": None,
        "STDDEV_SAMP": None,
        "SUM": None,
        "VAR_POP": None,
        "VAR_SAMP": None,
        "VARIANCE": None,
        "APPROX_PERCENTILE": "its approximation differs from Dremio's; use PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x)",
        "HLL": "HyperLogLog sketches are not carried; use APPROX_COUNT_DISTINCT(x) or NDV(x)",
    },
    "Window": {
        "CUME_DIST": None,
        "DENSE_RANK": None,
        "FIRST_VALUE": None,
        "LAG": None,
        "LAST_VALUE": None,
        "LEAD": None,
        "NTILE": None,
        "PERCENT_RANK": None,
        "RANK": None,
        "ROW_NUMBER": None,
    },
}
REFUSED = {
    name: reason
    for functions in DREMIO_FUNCTIONS.values()
    for name, reason in functions.items()
    if reason is not None
}

# The parsed node types that carry Dremio's meaning to DuckDB unchanged (each is behind a
# function of DREMIO_FUNCTIONS, or is syntax: CASE, CAST, IF of CASE, ...).
CARRIED: tuple[type[exp.Expr], ...] = (
    exp.Abs,
    exp.Acos,
    exp.ApproxDistinct,
    exp.ArrayAgg,
    exp.Ascii,
    exp.Asin,
    exp.Atan,
    exp.Atan2,
    exp.Avg,
    exp.BitLength,
    exp.BitwiseAndAgg,
    exp.BitwiseOrAgg,
    exp.Case,
    exp.Cast,
    exp.Cbrt,
    exp.Ceil,
    exp.Chr,
    exp.Coalesce,
    exp.Concat,
    exp.ConcatWs,
    exp.Corr,
    exp.Cos,
    exp.Cosh,
    exp.Cot,
    exp.Count,
    exp.CovarPop,
    exp.CovarSamp,
    exp.CumeDist,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.Date,
    exp.DateAdd,
    exp.DateDiff,
    exp.DateSub,
    exp.DateTrunc,
    exp.Day,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.Degrees,
    exp.DenseRank,
    exp.EndsWith,
    exp.Exp,
    exp.Extract,
    exp.FirstValue,
    exp.Floor,
    exp.Greatest,
    exp.Hex,
    exp.Hour,
    exp.If,
    exp.Initcap,
    exp.Lag,
    exp.LastDay,
    exp.LastValue,
    exp.Lead,
    exp.Least,
    exp.Left,
    exp.Length,
    exp.Levenshtein,
    exp.Ln,
    exp.Log,
    exp.LogicalAnd,
    exp.LogicalOr,
    exp.Lower,
    exp.Max,
    exp.Median,
    exp.Min,
    exp.Minute,
    exp.Month,
    exp.MonthsBetween,
    exp.NextDay,
    exp.Ntile,
    exp.Nullif,
    exp.Pad,
    exp.PercentRank,
    exp.PercentileCont,
    exp.PercentileDisc,
    exp.Pi,
    exp.Pow,
    exp.Quarter,
    exp.Radians,
    exp.Rand,
    exp.Rank,
    exp.RegexpExtract,
    exp.RegexpLike,
    exp.RegexpReplace,
    exp.Repeat,
    exp.Replace,
    exp.Reverse,
    exp.Right,
    exp.Round,
    exp.RowNumber,
    exp.Second,
    exp.Sign,
    exp.Sin,
    exp.Sinh,
    exp.SplitPart,
    exp.Sqrt,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.StrPosition,
    exp.StartsWith,
    exp.Substring,
    exp.Sum,
    exp.Tan,
    exp.Tanh,
    exp.Exists,
    exp.Array,
    exp.ToChar,
    exp.ToNumber,
    exp.Translate,
    exp.Trim,
    exp.Trunc,
    exp.TryCast,
    exp.Unhex,
    exp.Upper,
    exp.Variance,
    exp.VariancePop,
    exp.Week,
    exp.WeekOfYear,
    exp.Year,
    exp.ConvertTimezone,
    exp.DayOfWeek,
    exp.Anonymous,  # checked by name below
)
# Functions sqlglot does not know, by name, that DuckDB runs with Dremio's meaning.
ANONYMOUS_CARRIED = {"BASE64", "LISTAGG"}
ANONYMOUS_REWRITTEN = {
    "BTRIM",
    "E",
    "NDV",
    "NOW",
    "UNBASE64",
    "ISNULL",
    "OCTET_LENGTH",
    "TIMESTAMPADD",
    "TIMESTAMPDIFF",
    "TO_DATE",
    "TO_TIME",
    "TO_TIMESTAMP",
    "UNIX_TIMESTAMP",
}
# Units Dremio's EXTRACT / DATE_PART take; DOW counts from 1 (Sunday) as in Dremio.
EXTRACT_UNITS = {
    "YEAR",
    "QUARTER",
    "MONTH",
    "WEEK",
    "DAY",
    "DOY",
    "DAYOFYEAR",
    "DOW",
    "DAYOFWEEK",
    "HOUR",
    "MINUTE",
    "SECOND",
    "EPOCH",
    "DECADE",
    "CENTURY",
    "MILLENNIUM",
}
DATE_UNITS = {"YEAR", "QUARTER", "MONTH", "WEEK", "DAY"}
TIME_UNITS = DATE_UNITS | {"HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND"}


def _display_name(node: exp.Func) -> str:
    """The function's name as a user wrote it (near enough: sqlglot's SQL name)."""
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    return type(node).sql_names()[0] if type(node).sql_names() else type(node).__name__.upper()


def _refuse(name: str, reason: str | None = None) -> EngineError:
    if reason:
        return EngineError(f"function {name} is not supported in Dremio SQL: {reason}", DOCS)
    return EngineError(
        f"function {name} is not among the Dremio functions Fleuve runs",
        f"run the query with dialect=duckdb to use DuckDB's functions, or {DOCS}",
    )


def _check_dremio(ast: exp.Expr) -> None:
    """Refuse, by name, every function outside the Dremio functions Fleuve carries."""
    for node in ast.find_all(exp.Func):
        if isinstance(node, exp.Connector):
            continue  # AND, OR: operators
        name = _display_name(node)
        if name in REFUSED:
            raise _refuse(name, REFUSED[name])
        if not isinstance(node, CARRIED):
            raise _refuse(name)
        if isinstance(node, exp.Anonymous) and name not in (
            ANONYMOUS_CARRIED | ANONYMOUS_REWRITTEN
        ):
            raise _refuse(name)
        if isinstance(node, exp.Extract):
            unit = node.this.name.upper() if node.this is not None else ""
            if unit not in EXTRACT_UNITS:
                raise EngineError(
                    f"EXTRACT / DATE_PART unit '{unit}' is not supported",
                    f"use one of {', '.join(sorted(EXTRACT_UNITS))}",
                )


def _unit(node: exp.Expr | None, function: str, allowed: set[str]) -> str:
    name = (node.name if node is not None else "").upper().removeprefix("SQL_TSI_")
    if name not in allowed:
        raise EngineError(
            f"{function} unit '{name}' is not supported",
            f"use one of {', '.join(sorted(allowed))}",
        )
    return name


def _dremio(node: exp.Expr) -> exp.Expr | None:
    """Dremio functions whose DuckDB spelling differs, or that sqlglot misreads."""
    if isinstance(node, exp.DayOfWeek):
        return exp.Paren(this=exp.Add(this=node.copy(), expression=exp.Literal.number(1)))
    if isinstance(node, exp.Extract):
        unit = node.this.name.upper()
        if unit in ("DOW", "DAYOFWEEK"):
            return exp.Paren(
                this=exp.Add(
                    this=exp.Extract(this=exp.var("DOW"), expression=node.expression.copy()),
                    expression=exp.Literal.number(1),
                )
            )
        if isinstance(node.this, exp.Literal):
            return exp.Extract(this=exp.var(unit), expression=node.expression.copy())
        return None
    if isinstance(node, exp.RegexpExtract) and node.args.get("position") is not None:
        # Dremio's third argument is the group number, not a start position.
        return exp.RegexpExtract(
            this=node.this.copy(),
            expression=node.expression.copy(),
            group=node.args["position"].copy(),
        )
    if isinstance(node, exp.RegexpLike):
        # Dremio's REGEXP_LIKE and REGEXP_MATCHES match the whole string.
        return _fn("regexp_full_match", node.this.copy(), node.expression.copy())
    if isinstance(node, exp.DateDiff):
        # DATEDIFF(end, start): days between the two dates, times of day ignored.
        return _fn(
            "date_diff",
            exp.Literal.string("DAY"),
            exp.cast(node.expression.copy(), "DATE"),
            exp.cast(node.this.copy(), "DATE"),
        )
    if isinstance(node, exp.ConvertTimezone):
        source = node.args.get("source_tz") or exp.Literal.string("UTC")
        target = node.args["target_tz"]
        stamp = node.args["timestamp"]
        # Read the wall time in the source zone, give it as wall time in the target zone.
        return _fn("timezone", target.copy(), _fn("timezone", source.copy(), stamp.copy()))
    if isinstance(node, exp.ToNumber):
        fmt = node.args.get("format")
        if fmt is not None:
            text = _format_text(fmt, "TO_NUMBER")
            if not _NUMERIC_FORMAT.match(text) or "," in text:
                raise EngineError(
                    f"TO_NUMBER format {text!r} is not supported",
                    "use a format of # and 0 with one '.', or CAST(s AS DOUBLE)",
                )
        return exp.cast(node.this.copy(), "DOUBLE")
    if isinstance(node, exp.DateAdd | exp.DateSub) and _interval_kind(node.expression) == "TIME":
        return _date_plus_interval(node)  # a DATE with hours: refused as for DATE + INTERVAL
    if isinstance(node, exp.DateAdd | exp.DateSub) and node.args.get("unit") is None:
        node.set("unit", exp.var("DAY"))
        return _keep_date(node, "DATE_ADD" if isinstance(node, exp.DateAdd) else "DATE_SUB")
    if isinstance(node, exp.DateAdd | exp.DateSub):
        return _keep_date(node, "DATE_ADD" if isinstance(node, exp.DateAdd) else "DATE_SUB")
    if isinstance(node, exp.DateTrunc):
        return _keep_date(node, "DATE_TRUNC")
    if isinstance(node, exp.Anonymous):
        return _dremio_anonymous(node)
    if isinstance(node, exp.Add | exp.Sub):
        return _date_plus_interval(node)
    return None


_DATE_ONLY = re.compile(
    r"^\s*(?:[-+]?\s*\d+\s*(?:years?|months?|days?|weeks?|quarters?|decades?|"
    r"centur(?:y|ies)|millenni(?:um|a))\s*)+$",
    re.IGNORECASE,
)


def _interval_kind(node: exp.Expr) -> str | None:
    """DATE for an interval of whole days or months, TIME for one with a time, else None."""
    while isinstance(node, exp.Neg | exp.Paren):
        node = node.this
    if not isinstance(node, exp.Interval):
        return None
    unit = node.args.get("unit")
    if unit is not None:
        word = unit.name.upper()
        return "DATE" if word in DATE_UNITS or word.removesuffix("S") in DATE_UNITS else "TIME"
    return "DATE" if _DATE_ONLY.match(node.this.name if node.this else "") else "TIME"


def _date_plus_interval(node: exp.Expr) -> exp.Expr | None:
    """Dremio's DATE ± INTERVAL stays a DATE (DuckDB's becomes a TIMESTAMP)."""
    interval = _interval_kind(node.expression)
    if interval is None and isinstance(node, exp.Add):
        interval = _interval_kind(node.this)
        if interval is not None:  # INTERVAL + d: the date first, as settle expects
            left, right = node.this, node.expression
            node.set("this", right)
            node.set("expression", left)
    if interval is None:
        return None
    kind = _temporal_kind(node.this)
    if kind is None and isinstance(node.this, exp.Column):
        node.meta["fleuve_settle"] = "INTERVAL_" + interval
    elif kind == "DATE":
        return _date_arithmetic(node, interval)
    return None


def _date_arithmetic(node: exp.Expr, interval: str) -> exp.Expr:
    if interval == "TIME":
        # Dremio keeps the DATE and drops the time DuckDB would add: refuse rather than differ.
        raise EngineError(
            f"{node.sql('duckdb')}: a DATE with an interval of hours, minutes or seconds stays "
            "a DATE in Dremio SQL, which would drop them",
            "CAST the date to TIMESTAMP to add or subtract a time of day",
        )
    # The operands move to a new node (no copy: this runs for every such query).
    moved = type(node)(this=node.this, expression=node.expression)
    return exp.Cast(this=moved, to=exp.DataType(this=exp.DataType.Type.DATE))


def _dremio_anonymous(node: exp.Anonymous) -> exp.Expr | None:
    name, args = node.name.upper(), [a.copy() for a in node.expressions]
    if name == "ISNULL" and len(args) == 1:
        return exp.Paren(this=exp.Is(this=args[0], expression=exp.Null()))
    if name == "OCTET_LENGTH" and len(args) == 1:
        return _fn("octet_length", _fn("encode", args[0]))
    if name == "UNBASE64":
        return _fn("from_base64", *args)
    if name == "BTRIM":
        return exp.Trim(this=args[0], expression=args[1]) if len(args) == 2 else _fn("trim", *args)
    if name == "E" and not args:
        return _fn("exp", exp.Literal.number(1))
    if name == "NOW" and not args:
        return exp.CurrentTimestamp()
    if name == "NDV":
        return exp.ApproxDistinct(this=args[0])
    if name == "UNIX_TIMESTAMP":
        if not args:
            return exp.cast(_fn("epoch", exp.CurrentTimestamp()), "BIGINT")
        if len(args) == 2:
            fmt = args[1]
            if not (isinstance(fmt, exp.Literal) and fmt.is_string):
                raise EngineError(
                    "UNIX_TIMESTAMP needs its format as a string literal",
                    "write the format in quotes",
                )
            stamp = _parse_time(args[0], fmt.this, "UNIX_TIMESTAMP", None)
        else:
            stamp = exp.cast(args[0], "TIMESTAMP")
        return exp.cast(_fn("epoch", stamp), "BIGINT")
    if name == "TO_TIMESTAMP" and len(args) == 1:
        # Seconds since the epoch, as a TIMESTAMP (DuckDB's to_timestamp gives one with a zone).
        seconds = exp.cast(args[0], "DOUBLE")
        micros = exp.Mul(this=exp.Paren(this=seconds), expression=exp.Literal.number(1_000_000))
        return _fn("make_timestamp", exp.cast(_fn("round", micros), "BIGINT"))
    if name == "TIMESTAMPADD" and len(args) == 3:
        unit = _unit(args[0], "TIMESTAMPADD", TIME_UNITS)
        added = exp.DateAdd(this=args[2], expression=args[1], unit=exp.var(unit))
        return _keep_date(added, "TIMESTAMPADD") or added
    if name == "TIMESTAMPDIFF" and len(args) == 3:
        # Whole units from start to end, as Dremio counts them (date_diff counts boundaries).
        unit = _unit(args[0], "TIMESTAMPDIFF", TIME_UNITS)
        return _fn("date_sub", exp.Literal.string(unit), args[1], args[2])
    if name in ("TO_DATE", "TO_TIME", "TO_TIMESTAMP"):
        if len(args) != 2:
            raise EngineError(
                f"{name} takes a string and its format here",
                f"write {name}(s, 'YYYY-MM-DD HH24:MI:SS'), or CAST(x AS DATE/TIMESTAMP/TIME)",
            )
        return None  # the shared rewrite reads the format
    if name in ANONYMOUS_CARRIED:
        return None
    if name in ANONYMOUS_REWRITTEN:
        raise EngineError(
            f"function {name} is called with {len(args)} arguments, which Dremio does not take",
            f"check the arguments against Dremio's reference ({DOCS})",
        )
    raise _refuse(name)


# What the calls the rewrites leave in place return (TO_DATE and TO_TIMESTAMP are read later).
_KIND_OF_CALL = {
    "TO_DATE": "DATE",
    "TO_TIMESTAMP": "TIMESTAMP",
    "STRPTIME": "TIMESTAMP",
    "MAKE_TIMESTAMP": "TIMESTAMP",
}


def _temporal_kind(node: exp.Expr) -> str | None:
    """DATE, TIMESTAMP, or None when only the column's type can tell."""
    if isinstance(node, exp.Cast | exp.TryCast):
        if node.to.is_type(exp.DataType.Type.DATE):
            return "DATE"
        if node.to.is_type(*exp.DataType.TEMPORAL_TYPES):
            return "TIMESTAMP"
    if isinstance(node, exp.CurrentDate | exp.Date | exp.LastDay):
        return "DATE"
    if isinstance(node, exp.CurrentTimestamp):
        return "TIMESTAMP"
    if isinstance(node, exp.Anonymous):
        return _KIND_OF_CALL.get(node.name.upper())
    if isinstance(node, exp.Paren):
        return _temporal_kind(node.this)
    return None


def _keep_date(node: exp.Expr, function: str) -> exp.Expr | None:
    unit = (node.text("unit") or "DAY").upper()
    if isinstance(node, exp.DateTrunc):
        unit = node.args["unit"].name.upper() if node.args.get("unit") is not None else unit
    if unit not in DATE_UNITS:
        return None
    kind = _temporal_kind(node.this)
    if kind == "DATE":
        return exp.cast(node.copy(), "DATE")
    if kind is None and isinstance(node.this, exp.Column):
        # The column's type decides once the query's tables are known (`settle`).
        node.meta["fleuve_settle"] = function
    elif kind is None:
        raise EngineError(
            f"{function} cannot tell whether its argument {node.this.sql('duckdb')} is a DATE "
            "or a TIMESTAMP",
            "CAST it to DATE or TIMESTAMP",
        )
    return None


def _transform(ast: exp.Expr, rewrite: Callable[[exp.Expr], exp.Expr | None]) -> exp.Expr:
    """`ast` with `rewrite` applied to each node, innermost first, each node once."""
    for node in reversed(list(ast.walk(bfs=False))):
        new = rewrite(node)
        if new is None or new is node:
            continue
        if node is ast:
            ast = new
        else:
            node.replace(new)
    return ast


def translate(ast: exp.Expr, dialect: str) -> exp.Expr:
    """The parsed query with each function given its dialect's meaning in DuckDB."""
    ast = _transform(ast, _restore)
    if dialect == "dremio":
        _check_dremio(ast)
        ast = _transform(ast, _dremio)
    return _transform(ast, _shared)


def settle(ast: exp.Expr, columns: Sequence[tuple[str, str, str]]) -> None:
    """Give the rewrites that depend on a column's type the column's type.

    Dremio's date arithmetic keeps a DATE column a DATE; TO_CHAR formats a TIME column on the
    epoch's day. `columns` lists (table alias, column name, DuckDB type) of the tables the
    query reads.
    """
    marked = ast.find_all(exp.Func, exp.Add, exp.Sub)
    for node in [n for n in marked if n.meta.get("fleuve_settle")]:
        function = node.meta.pop("fleuve_settle")
        col = node.this if function != "TO_CHAR" else node.expressions[0]
        table = col.table.lower()
        types = {
            t.upper()
            for alias, name, t in columns
            if name.lower() == col.name.lower() and (not table or alias.lower() == table)
        }
        if function == "TO_CHAR":
            if types == {"TIME"}:
                col.replace(_on_epoch_day(col.copy()))
        elif function.startswith("INTERVAL_"):
            # A column of unknown type (from a subquery) keeps DuckDB's arithmetic.
            if types == {"DATE"}:
                node.replace(_date_arithmetic(node, function.removeprefix("INTERVAL_")))
        elif len(types) != 1:
            raise EngineError(
                f"{function} cannot tell whether {col.sql('duckdb')} is a DATE or a TIMESTAMP",
                "CAST it to DATE or TIMESTAMP",
            )
        elif types == {"DATE"}:
            node.replace(exp.cast(node.copy(), "DATE"))


def to_duckdb(ast: exp.Expr) -> str:
    """The DuckDB SQL of `ast`; an EngineError naming any construct DuckDB would not receive."""
    try:
        return ast.sql(dialect="duckdb", unsupported_level=ErrorLevel.IMMEDIATE)
    except UnsupportedError as exc:
        message = str(exc).splitlines()[0].rstrip(".")
        culprit = _unsupported_function(ast)
        what = f"function {culprit}" if culprit else "the query"
        raise EngineError(
            f"{what} cannot be run as written: {message}",
            f"rewrite it with supported functions ({DOCS})",
        ) from None


def _unsupported_function(ast: exp.Expr) -> str | None:
    """The name of the innermost function sqlglot cannot write for DuckDB."""
    for node in reversed(list(ast.walk(bfs=False))):
        if isinstance(node, exp.Func) and not isinstance(node, exp.Connector):
            try:
                node.sql(dialect="duckdb", unsupported_level=ErrorLevel.IMMEDIATE)
            except UnsupportedError:
                return _display_name(node)
    return None
