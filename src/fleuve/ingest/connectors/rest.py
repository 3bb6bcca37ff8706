"""JSON REST APIs: GET or POST, records found by path, five pagination styles, three auths.

Pages are written as JSON Lines to a scratch file while they arrive (memory stays bounded)
and the lake session then reads that file with full type inference.
"""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import duckdb
import httpx

from fleuve.config import StreamSettings
from fleuve.ingest.connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    Extract,
    ExtractContext,
    StreamInfo,
    cursor_candidates,
)
from fleuve.ingest.errors import IngestError, SourceDataError, SourceUnavailable, SyncCancelled
from fleuve.lake import quote_literal
from fleuve.logs.local import scrub

PAGINATIONS = ("none", "page", "offset", "cursor", "next_link", "link_header")


class RestConnector(Connector):
    """Reads every page of each stream's endpoint; incremental through a cursor parameter."""

    type = "rest"
    capabilities: ClassVar[Capabilities] = Capabilities(incremental_by="cursor query parameter")

    def __repr__(self) -> str:
        return f"RestConnector(connection={self.conn.name!r}, url={self.source.get('url')!r})"

    def client(self) -> httpx.Client:
        """An HTTP client with the source's base URL, headers and authentication."""
        if not self.source.get("url"):
            raise IngestError(
                f"connection '{self.conn.name}': the rest source needs a url",
                "set source.url, e.g. https://api.example.com",
            )
        headers = {"Accept": "application/json", **(self.source.get("headers") or {})}
        params: dict[str, str] = {}
        auth: httpx.Auth | None = None
        spec = dict(self.source.get("auth") or {})
        if self.source.get("api_key") and not spec:
            spec = {
                "type": "api_key",
                "name": self.source.get("api_key_header", "X-API-Key"),
                "value": self.source["api_key"],
            }
        kind = spec.get("type")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {spec['token']}"
        elif kind == "basic":
            auth = httpx.BasicAuth(str(spec["username"]), str(spec["password"]))
        elif kind == "api_key":
            if spec.get("in", "header") == "query":
                params[spec.get("name", "api_key")] = str(spec["value"])
            else:
                headers[spec.get("name", "X-API-Key")] = str(spec["value"])
        elif kind is not None:
            raise IngestError(
                f"connection '{self.conn.name}': unknown auth type '{kind}'",
                "use auth.type bearer (token), basic (username, password) or api_key (name, value)",
            )
        timeout = float(self.source.get("timeout_seconds", 30))
        return httpx.Client(
            base_url=str(self.source["url"]),
            headers=headers,
            params=params,
            auth=auth,
            timeout=timeout,
            follow_redirects=True,
        )

    # -- HTTP -------------------------------------------------------------------------

    def request(
        self, client: httpx.Client, method: str, url: str, ctx: ExtractContext | None, **kwargs: Any
    ) -> httpx.Response:
        """One request; 429 waits for Retry-After, 5xx and network errors back off, both bounded."""
        retries = int(self.source.get("http_retries", 5))
        max_wait = float(self.source.get("max_retry_after_seconds", 60))
        for attempt in range(retries + 1):
            if ctx is not None and ctx.cancelled.is_set():
                raise SyncCancelled(f"connection '{self.conn.name}': stopped while reading {url}")
            try:
                resp = client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= retries:
                    raise SourceUnavailable(
                        f"connection '{self.conn.name}': cannot reach {client.base_url}: {type(exc).__name__}",
                        "check that the API is up and source.url is right",
                    ) from None
                time.sleep(min(30.0, 0.25 * 2**attempt))
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                if attempt >= retries:
                    raise SourceUnavailable(
                        f"connection '{self.conn.name}': {method} {url} answered {resp.status_code} "
                        f"{retries + 1} times",
                        "wait for the API to recover, or raise source.http_retries",
                    )
                wait = _retry_after(resp.headers.get("Retry-After"))
                time.sleep(min(max_wait, wait if wait is not None else 0.25 * 2**attempt))
                continue
            if resp.status_code in (401, 403):
                raise IngestError(
                    f"connection '{self.conn.name}': {method} {url} was refused ({resp.status_code})",
                    "check source.auth (or source.api_key)",
                )
            if resp.status_code >= 400:
                raise IngestError(
                    f"connection '{self.conn.name}': {method} {url} answered {resp.status_code}: "
                    f"{resp.text[:200]}",
                    "check the stream's path, params and body",
                )
            return resp
        raise AssertionError("unreachable")

    def pages(
        self,
        client: httpx.Client,
        stream: StreamSettings,
        since: Cursor | None,
        ctx: ExtractContext | None,
    ) -> Iterator[tuple[list[Any], int]]:
        """(records, response bytes) of each page, following the stream's pagination."""
        method = str(self.option(stream, "method", "GET")).upper()
        url = stream.path or f"/{stream.name}"
        params = dict(self.option(stream, "params") or {})
        body = dict(self.option(stream, "body") or {})
        cursor_param = self.option(stream, "cursor_param")
        if since is not None and cursor_param:
            params[cursor_param] = since.value
        pag = dict(self.option(stream, "pagination") or {"type": "none"})
        kind = pag.get("type", "none")
        if kind not in PAGINATIONS:
            raise IngestError(
                f"stream '{stream.name}': unknown pagination type '{kind}'",
                f"use one of: {', '.join(PAGINATIONS)}",
            )
        size = int(pag.get("size", 100))
        page = int(pag.get("start", 1))
        offset = 0
        token: Any = None
        following = False
        seen: set[str] = set()
        number = 0
        while True:
            number += 1
            where = f"{url} {query_key(params, page, offset, token)}"
            if where in seen:
                raise IngestError(
                    f"stream '{stream.name}': the API sent the same page twice ({url}); "
                    "stopping instead of looping",
                    "check the stream's pagination settings (type, params, cursor_path, next_path)",
                )
            seen.add(where)
            query = dict(params)
            if kind == "page":
                query[pag.get("page_param", "page")] = page
                query[pag.get("size_param", "per_page")] = size
            elif kind == "offset":
                query[pag.get("offset_param", "offset")] = offset
                query[pag.get("limit_param", "limit")] = size
            elif kind == "cursor" and token is not None:
                query[pag.get("cursor_param", "cursor")] = token
            if following:
                # A next link carries its own query; passing params would replace it.
                resp = self.request(client, method, url, ctx)
            elif method == "POST":
                resp = self.request(client, method, url, ctx, json={**body, **query})
            else:
                resp = self.request(client, method, url, ctx, params=query)
            try:
                doc = resp.json()
            except ValueError as exc:  # invalid JSON, or bytes that are not text
                raise SourceDataError(
                    f"stream '{stream.name}': {self.answer(resp, number)} is not JSON ({exc})",
                    "check the stream's path and the source's url and auth (an HTML page is often "
                    "a login or error page); if the API answers JSON Lines or XML, it cannot be read "
                    "as a rest source",
                ) from None
            records = _at(doc, self.option(stream, "records_path", "data"))
            if not isinstance(records, list):
                raise SourceDataError(
                    f"stream '{stream.name}': no list of records at "
                    f"'{self.option(stream, 'records_path', 'data')}' in {self.answer(resp, number)}",
                    "set records_path to where the records are (e.g. 'data' or 'results.items'; '' for a top-level list)",
                )
            yield records, len(resp.content)
            if kind == "none" or not records:
                return
            if kind == "page":
                if len(records) < size:
                    return
                page += 1
            elif kind == "offset":
                if len(records) < size:
                    return
                offset += len(records)
            elif kind == "cursor":
                token = _at(doc, pag.get("cursor_path", "next_cursor"))
                if not token:
                    return
            elif kind == "next_link":
                nxt = _at(doc, pag.get("next_path", "next"))
                if not nxt:
                    return
                url, following = str(nxt), True
            elif kind == "link_header":
                nxt = resp.links.get("next", {}).get("url")
                if not nxt:
                    return
                url, following = str(nxt), True

    def answer(self, resp: httpx.Response, page: int) -> str:
        """Which request got `resp` (its URL without credentials, the page) and what it said."""
        url = resp.request.url.copy_with(username=None, password=None)
        spec = dict(self.source.get("auth") or {})
        if spec.get("type") == "api_key" and spec.get("in") == "query":
            url = url.copy_remove_param(str(spec.get("name", "api_key")))
        start = resp.content[:120].decode("utf-8", errors="replace")
        kind = resp.headers.get("Content-Type") or "no Content-Type"
        return scrub(
            f"the answer to {resp.request.method} {url} (page {page}): {resp.status_code}, {kind}, "
            f"{len(resp.content):,} bytes starting with {start!r}"
        )

    # -- connector --------------------------------------------------------------------

    def check(self, con: duckdb.DuckDBPyConnection) -> str:
        with self.client() as client:
            for stream in self.conn.streams:
                next(self.pages(client, stream, None, None))
        return f"reached {self.source.get('url')}; {len(self.conn.streams)} endpoints answered"

    def discover(self, con: duckdb.DuckDBPyConnection) -> list[StreamInfo]:
        out = []
        with self.client() as client:
            for stream in self.conn.streams:
                records, _ = next(self.pages(client, stream, None, None))
                sample = [r for r in records if isinstance(r, dict)][:1000]
                cols: list[tuple[str, str]] = []
                if sample:
                    con.execute("CREATE OR REPLACE TEMP TABLE fleuve_rest_sample (doc JSON)")
                    con.executemany(
                        "INSERT INTO fleuve_rest_sample VALUES (?)",
                        [[json.dumps(r)] for r in sample],
                    )
                    structure = con.execute(
                        "SELECT json_structure(doc) FROM fleuve_rest_sample LIMIT 1"
                    ).fetchall()[0][0]
                    cols = [(k, _json_kind(v)) for k, v in json.loads(structure).items()]
                    con.execute("DROP TABLE fleuve_rest_sample")
                out.append(
                    StreamInfo(
                        stream.name,
                        cols,
                        list(stream.primary_key),
                        cursor_candidates(cols),
                        list(self.capabilities.sync_modes),
                    )
                )
        return out

    def extract(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        since: Cursor | None,
        files: dict[str, str] | None,
        ctx: ExtractContext,
    ) -> Extract:
        ctx.scratch.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:10]
        data = ctx.scratch / f"{tag}.jsonl"
        bad = ctx.scratch / f"{tag}.rejected.jsonl"
        total_bytes = rows = rejected = 0
        # The cursor is kept as the API wrote it, so that it goes back in the same format.
        newest: Any = None
        cursor = stream.cursor_field
        with (
            self.client() as client,
            data.open("w", encoding="utf-8") as out,
            bad.open("w", encoding="utf-8") as rej,
        ):
            for number, (records, nbytes) in enumerate(self.pages(client, stream, since, ctx), 1):
                total_bytes += nbytes
                for i, record in enumerate(records):
                    if isinstance(record, dict):
                        value = record.get(cursor) if cursor else None
                        if value is not None and (newest is None or _later(value, newest)):
                            newest = value
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
                        rows += 1
                    else:
                        rej.write(
                            json.dumps(
                                {
                                    "location": f"page {number}, record {i + 1}",
                                    "reason": f"not a JSON object ({type(record).__name__})",
                                    "raw": json.dumps(record, ensure_ascii=False)[:10_000],
                                },
                                ensure_ascii=False,
                            )
                            + "\n"
                        )
                        rejected += 1
                ctx.on_rows(len(records), nbytes)
        relation = ""
        if rows:
            relation = (
                f"SELECT * FROM read_json({quote_literal(str(data))}, format = 'newline_delimited', "
                "sample_size = -1)"
            )
        rejects = None
        if rejected:
            rejects = (
                f"SELECT location, reason, raw FROM read_json({quote_literal(str(bad))}, "
                "columns = {'location': 'VARCHAR', 'reason': 'VARCHAR', 'raw': 'VARCHAR'})"
            )
        return Extract(
            relation=relation,
            bytes_read=total_bytes,
            estimated_rows=rows,
            rejected=rejects,
            cursor_value=None if newest is None else str(newest),
            nested_as_json=True,
            inferred_types=True,
        )


def _later(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return str(a) > str(b)


def query_key(params: dict[str, Any], page: int, offset: int, token: Any) -> str:
    """What identifies one page request, to notice an API that loops."""
    return f"{sorted(params.items())} {page} {offset} {token}"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _at(doc: Any, path: str | None) -> Any:
    """The value at a dotted path ('data.items'); '' or '$' is the document itself."""
    if not path or path == "$":
        return doc
    for part in str(path).split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _json_kind(value: Any) -> str:
    if isinstance(value, dict | list):
        return "JSON"
    return str(value).upper()
