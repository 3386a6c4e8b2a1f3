"""Distributed Map (`"ProcessorConfig": {"Mode": "DISTRIBUTED"}`) on the StepFlow engine.

A distributed Map reads its items with an `ItemReader` (an S3 object or listing through the
`s3` connector, or a file through the `fs` connector: `aionix:::fs:read`) in pages, groups
them with an `ItemBatcher` and runs every batch (or item) as a **child execution** of the same
workflow version whose root is the Map's `ItemProcessor`: a real execution, with its own
history, readable with `GET /api/v1/executions/{id}`. The parent's history links them with a
`MapRunStarted` event naming the map run.

Durability: the map run (`sf_map_runs`) keeps the reader's cursor (the byte, the listing page and
key, or the inventory file and offset, where the next batch starts) and one row per started batch
(`sf_map_batches`). A child is started with the idempotency key `maprun:{map run}:{batch}`, so
after a crash the batch that was being started is found, not started twice; finished batches are never run again, and a redrive
of the parent redrives only the failed children. Memory stays bounded: a page of at most
`PAGE_BYTES` is parsed at a time (in a worker thread) and at most `MaxConcurrency` batches are
in flight; results are written (`ResultWriter`) or collected from the store page by page.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import gc
import hashlib
import json
import time
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aionix import jsonutil
from aionix.bus import BusError, CallContext
from aionix.errors import AionixError
from aionix.redact import SecretSet
from aionix.stepflow import compile as plan_mod
from aionix.stepflow.asl.evaluate import (
    ACCOUNT,
    PARTITION,
    REGION,
    Scope,
    constant,
    input_path,
    iso,
    jsonata,
    payload,
    read_path,
)
from aionix.stepflow.engine import Failure, Frame, Run

if TYPE_CHECKING:
    from aionix.stepflow.compile import StatePlan
    from aionix.stepflow.engine import Engine

S3_GET = "arn:aws:states:::s3:getObject"
S3_LIST = "arn:aws:states:::s3:listObjectsV2"
S3_PUT = "arn:aws:states:::s3:putObject"
FS_READ = "aionix:::fs:read"
FS_WRITE = "aionix:::fs:write"
READERS = (S3_GET, S3_LIST, FS_READ)
WRITERS = (S3_PUT, FS_WRITE)
INPUT_TYPES = ("CSV", "JSON", "JSONL", "MANIFEST")
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
READER_FAILED = "States.ItemReaderFailed"
WRITER_FAILED = "States.ResultWriterFailed"
#: bytes read per page (capped by `[connectors] max_result_bytes`)
PAGE_BYTES = 256 * 1024
#: an S3 Inventory manifest is read whole, up to this size
MANIFEST_BYTES = 8 * 1024 * 1024
#: ... parsed in slices of this many bytes (about a millisecond each)
PARSE_SLICE = 16 * 1024
#: default children in flight (capped by `[stepflow] max_map_concurrency`)
DEFAULT_CONCURRENCY = 1000
#: result files are split at this many bytes or entries
#: a map run rests REST_SECONDS after every BUSY_SECONDS of back-to-back work (see `pace`)
BUSY_SECONDS = 0.01
REST_SECONDS = 0.003
RESULT_FILE_BYTES = 4 * 1024 * 1024
RESULT_FILE_ENTRIES = 1000


def is_distributed(s: dict[str, Any]) -> bool:
    processor = s.get("ItemProcessor") or s.get("Iterator")
    config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
    return isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED"


# ---------------------------------------------------------------------------- validation
def check(p: tuple[Any, ...], s: dict[str, Any], ql: str, err: Any) -> None:
    """Validate a Map's distributed fields; `err(pointer, message)` records a problem."""
    processor = s.get("ItemProcessor") or s.get("Iterator") or {}
    config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
    key = "ItemProcessor" if "ItemProcessor" in s else "Iterator"
    if config is not None and not isinstance(config, dict):
        err((*p, key, "ProcessorConfig"), "ProcessorConfig must be an object")
        return
    config = config or {}
    mode = config.get("Mode", "INLINE")
    if mode not in ("INLINE", "DISTRIBUTED"):
        err((*p, key, "ProcessorConfig", "Mode"), "Mode must be INLINE or DISTRIBUTED")
        return
    for field_name in config:
        if field_name not in ("Mode", "ExecutionType"):
            err((*p, key, "ProcessorConfig", field_name), f"field {field_name!r} is not valid in ProcessorConfig")
    if mode == "INLINE":
        if "ExecutionType" in config:
            err((*p, key, "ProcessorConfig", "ExecutionType"), "ExecutionType needs Mode DISTRIBUTED")
        for field_name in ("ItemReader", "ItemBatcher", "ResultWriter"):
            if field_name in s:
                err((*p, field_name), f"{field_name} needs a distributed Map (ProcessorConfig.Mode DISTRIBUTED)")
        return
    if config.get("ExecutionType", "STANDARD") not in ("STANDARD", "EXPRESS"):
        err((*p, key, "ProcessorConfig", "ExecutionType"), "ExecutionType must be STANDARD or EXPRESS")
    args = "Arguments" if ql == "JSONata" else "Parameters"
    reader = s.get("ItemReader")
    if reader is not None:
        rp = (*p, "ItemReader")
        if not isinstance(reader, dict):
            err(rp, "ItemReader must be an object")
        else:
            for field_name in reader:
                if field_name not in ("Resource", args, "ReaderConfig"):
                    err((*rp, field_name), f"field {field_name!r} is not valid in ItemReader")
            if reader.get("Resource") not in READERS:
                err((*rp, "Resource"), f"Resource must be one of {', '.join(READERS)}")
            params = reader.get(args)
            if not isinstance(params, (dict, str)):
                err((*rp, args), f"ItemReader needs {args} (the Bucket and Key, Bucket and Prefix, or Path)")
            rc = reader.get("ReaderConfig", {})
            if not isinstance(rc, dict):
                err((*rp, "ReaderConfig"), "ReaderConfig must be an object")
                rc = {}
            known = {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems", "MaxItemsPath"}
            for field_name in rc:
                if field_name not in known:
                    err((*rp, "ReaderConfig", field_name), f"field {field_name!r} is not valid in ReaderConfig")
            input_type = rc.get("InputType")
            if reader.get("Resource") in (S3_GET, FS_READ):
                if input_type not in INPUT_TYPES:
                    err((*rp, "ReaderConfig", "InputType"), f"InputType must be one of {', '.join(INPUT_TYPES)}")
            elif input_type is not None:
                err((*rp, "ReaderConfig", "InputType"), "an S3 listing takes no InputType")
            location = rc.get("CSVHeaderLocation", "FIRST_ROW")
            if location not in ("FIRST_ROW", "GIVEN"):
                err((*rp, "ReaderConfig", "CSVHeaderLocation"), "CSVHeaderLocation must be FIRST_ROW or GIVEN")
            headers = rc.get("CSVHeaders")
            if location == "GIVEN" and (
                not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers)
            ):
                err((*rp, "ReaderConfig", "CSVHeaders"), "CSVHeaderLocation GIVEN needs CSVHeaders, a list of names")
            if "CSVDelimiter" in rc and rc["CSVDelimiter"] not in DELIMITERS:
                err((*rp, "ReaderConfig", "CSVDelimiter"), f"CSVDelimiter must be one of {', '.join(DELIMITERS)}")
            _check_count((*rp, "ReaderConfig"), rc, "MaxItems", ql, err, minimum=0)
    batcher = s.get("ItemBatcher")
    if batcher is not None:
        bp = (*p, "ItemBatcher")
        if not isinstance(batcher, dict):
            err(bp, "ItemBatcher must be an object")
        else:
            known = {
                "MaxItemsPerBatch",
                "MaxItemsPerBatchPath",
                "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath",
                "BatchInput",
            }
            for field_name in batcher:
                if field_name not in known:
                    err((*bp, field_name), f"field {field_name!r} is not valid in ItemBatcher")
            _check_count(bp, batcher, "MaxItemsPerBatch", ql, err, minimum=1)
            _check_count(bp, batcher, "MaxInputBytesPerBatch", ql, err, minimum=1)
            if not any(k in batcher for k in known - {"BatchInput"}):
                err(bp, "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch")
    writer = s.get("ResultWriter")
    if writer is not None:
        wp = (*p, "ResultWriter")
        if not isinstance(writer, dict):
            err(wp, "ResultWriter must be an object")
        else:
            for field_name in writer:
                if field_name not in ("Resource", args):
                    err((*wp, field_name), f"field {field_name!r} is not valid in ResultWriter")
            if writer.get("Resource") not in WRITERS:
                err((*wp, "Resource"), f"Resource must be one of {', '.join(WRITERS)}")
            if not isinstance(writer.get(args), (dict, str)):
                err((*wp, args), f"ResultWriter needs {args} (Bucket and Prefix, or Prefix for fs)")


def _check_count(p: tuple[Any, ...], doc: dict[str, Any], name: str, ql: str, err: Any, *, minimum: int) -> None:
    if name + "Path" in doc:
        if ql == "JSONata":
            err((*p, name + "Path"), f"field {name + 'Path'!r} is a JSONPath field; in JSONata use an expression")
        elif not isinstance(doc[name + "Path"], str):
            err((*p, name + "Path"), f"{name}Path must be a path")
    if name not in doc:
        return
    value = doc[name]
    if isinstance(value, str) and ql == "JSONata" and constant(value) is None:
        return  # an expression: checked when the Map starts
    value = constant(value) if isinstance(value, str) else value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        err((*p, name), f"{name} must be an integer ≥ {minimum}")


# ---------------------------------------------------------------------------- compiled form
@dataclass
class Spec:
    """What the compiler keeps of a distributed Map (evaluated when the Map starts)."""

    name: str
    state: dict[str, Any]
    jsonata: bool
    label: str
    execution_type: str
    reader: dict[str, Any] | None
    batcher: dict[str, Any] | None
    writer: dict[str, Any] | None
    args_field: str = field(init=False)

    def __post_init__(self) -> None:
        self.args_field = "Arguments" if self.jsonata else "Parameters"

    # evaluation of the Map's own fields against its (effective) input ----------------
    def scope(self, d: dict[str, Any]) -> tuple[Scope, Any]:
        sc = Scope.of(self.name, d)
        eff = sc.input if self.jsonata else input_path(sc, self.state.get("InputPath", "$"), sc.input)
        return sc, eff

    def value(self, d: dict[str, Any], template: Any, where: str) -> Any:
        sc, eff = self.scope(d)
        if self.jsonata:
            return jsonata(sc, template, where)
        return payload(sc, template, eff, where)

    def count(self, d: dict[str, Any], doc: dict[str, Any] | None, name: str, where: str) -> int | None:
        if not doc:
            return None
        sc, eff = self.scope(d)
        if name + "Path" in doc:
            value = read_path(sc, doc[name + "Path"], eff)
        elif name in doc:
            value = jsonata(sc, doc[name], f"{where}/{name}") if self.jsonata else doc[name]
        else:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
            raise Failure(
                plan_mod.RUNTIME, f"state {self.name!r}: {where}.{name} must be a non-negative integer, got {value!r}"
            )
        return int(value)

    def selector(self) -> Any:
        selector = self.state.get("ItemSelector", None if self.jsonata else self.state.get("Parameters"))
        if selector is None:
            return None

        def select(d: dict[str, Any], index: int, item: Any) -> Any:
            sc, eff = self.scope(d)
            if self.jsonata:
                return jsonata(sc.with_item(index, item, sc.input), selector, "ItemSelector")
            return payload(sc.with_item(index, item, eff), selector, eff)

        return select


def compile_spec(name: str, s: dict[str, Any], ql_jsonata: bool) -> Spec:
    processor = s.get("ItemProcessor") or s.get("Iterator") or {}
    config = processor.get("ProcessorConfig") or {}
    return Spec(
        name=name,
        state=s,
        jsonata=ql_jsonata,
        label=str(s.get("Label") or name),
        execution_type=config.get("ExecutionType", "STANDARD"),
        reader=s.get("ItemReader"),
        batcher=s.get("ItemBatcher"),
        writer=s.get("ResultWriter"),
    )


# ---------------------------------------------------------------------------- readers
_rested = [0.0]


async def pace() -> None:
    """Map runs keep the loop busy back to back; after `BUSY_SECONDS` of that, one sleeps
    `REST_SECONDS` (else a yield): a process that sleeps now and then is woken at once when a
    request comes, one that never sleeps waits for its turn on a busy machine."""
    now = time.perf_counter()
    if now - _rested[0] < BUSY_SECONDS:
        await asyncio.sleep(0)
        return
    await asyncio.sleep(REST_SECONDS)
    _rested[0] = time.perf_counter()


class Source:
    """Reads items in pages from where `start(cursor)` put it. `page()` gives `[(item, pos)]`
    (item None: a header row, a blank line: no item) and sets `done` after the last page;
    `cursor(pos)` is the JSON cursor kept in `sf_map_runs` for "just after that item". A
    position is an int or a tuple of atoms, never a dict: a page of 10,000 rows then holds no
    objects that the garbage collector tracks besides the rows themselves (a CSV row, a dict
    of strings, is untracked too), so full collections stay rare and short."""

    done = False

    def start(self, cursor: dict[str, Any]) -> None:
        raise NotImplementedError

    async def page(self) -> list[tuple[Any, Any]]:
        raise NotImplementedError

    def cursor(self, pos: Any) -> dict[str, Any]:
        raise NotImplementedError


class ListSource(Source):
    """Items from the state input (`ItemsPath`/`Items`): the position is the next index."""

    def __init__(self, items: list[Any]) -> None:
        self.items, self.next = items, 0

    def start(self, cursor: dict[str, Any]) -> None:
        self.next = cursor.get("i", 0)

    async def page(self) -> list[tuple[Any, Any]]:
        start = self.next
        out = [(item, start + k + 1) for k, item in enumerate(self.items[start : start + 1000])]
        self.next = start + len(out)
        if self.next >= len(self.items):
            self.done = True
        return out

    def cursor(self, pos: Any) -> dict[str, Any]:
        return {"i": pos}


class Fetcher:
    """Byte ranges of one object or file through the connectors (never raw file access)."""

    def __init__(self, engine: Engine, run: Run, resource: str, params: dict[str, Any], connection: str | None):
        self.engine, self.run, self.resource, self.params, self.connection = engine, run, resource, params, connection

    def ctx(self) -> CallContext:
        run = self.run
        return CallContext(
            tenant=run.tenant,
            trace_id=run.trace_id,
            caller=run.caller_trn,
            secrets=run.redaction,
            on_behalf_of=run.on_behalf_of,
        )

    async def fetch(self, offset: int, size: int) -> tuple[bytes, int]:
        """(bytes from `offset`, at most `size`; the object's total size)."""
        if self.resource == FS_READ:
            target = "fs"
            body: dict[str, Any] = {"operation": "read", "path": self.params["Path"]}
        else:
            target = "s3"
            body = {"operation": "get", "bucket": self.params["Bucket"], "key": self.params["Key"]}
        body.update({"offset": offset, "max_bytes": size, "encoding": "base64"})
        if self.connection:
            body["connection"] = self.connection
        try:
            out = await self.engine.bus.invoke(target, body, self.ctx())
        except BusError as exc:
            raise Failure(READER_FAILED, f"{self.describe()}: {exc.error}: {exc.cause}") from None
        except AionixError as exc:
            raise Failure(READER_FAILED, f"{self.describe()}: {exc.message}") from None
        return base64.b64decode(out.get("content") or ""), int(out.get("size") or 0)

    def describe(self) -> str:
        if self.resource == FS_READ:
            return f"reading {self.params.get('Path')!r}"
        return f"reading s3://{self.params.get('Bucket')}/{self.params.get('Key')}"


class TextSource(Source):
    """CSV, JSON Lines or a JSON array, read a page at a time from a byte offset (the position)."""

    def __init__(self, fetcher: Fetcher, input_type: str, rc: dict[str, Any], page_bytes: int) -> None:
        self.fetcher, self.input_type, self.page_bytes = fetcher, input_type, page_bytes
        self.delimiter = DELIMITERS[rc.get("CSVDelimiter", "COMMA")]
        self.given = rc.get("CSVHeaders") if rc.get("CSVHeaderLocation") == "GIVEN" else None
        self.offset = 0
        self.header: list[str] | None = None  # a CSV's first row, once read
        self.inside = False  # a JSON array's opening bracket was read

    def start(self, cursor: dict[str, Any]) -> None:
        self.offset = cursor.get("off", 0)
        self.header = cursor.get("hdr")
        self.inside = bool(cursor.get("in"))

    def cursor(self, pos: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"off": pos}
        if self.header is not None:
            out["hdr"] = self.header
        if self.inside:
            out["in"] = True
        return out

    async def page(self) -> list[tuple[Any, Any]]:
        size = self.page_bytes
        while True:
            data, total = await self.fetcher.fetch(self.offset, size)
            at_end = self.offset + len(data) >= total
            try:
                if self.input_type == "JSON":
                    items = self._json(data, at_end)
                else:
                    items = await self._sliced(data, at_end)
            except ValueError as exc:
                raise Failure(READER_FAILED, f"{self.fetcher.describe()}: {exc}") from None
            if items is not None:
                if items:
                    self.offset = items[-1][1]
                if self.done or (at_end and self.offset >= total) or (at_end and not items):
                    self.done = True
                return items
            if len(data) < size or size >= self.page_bytes * 16:
                raise Failure(READER_FAILED, f"{self.fetcher.describe()}: a record is larger than {size} bytes")
            size *= 2  # one record does not fit a page: read a bigger one

    # -- lines (CSV, JSONL) -----------------------------------------------------------
    async def _sliced(self, data: bytes, at_end: bool) -> list[tuple[Any, Any]] | None:
        """Parse the page's whole records in slices of about `PARSE_SLICE` bytes, letting the
        loop serve others between two (parsing on the loop: a worker thread would hold the GIL
        for as long, and a busy machine may deschedule it while it does)."""
        cut = len(data) if at_end else self._cut(data)
        if cut <= 0:
            return None
        out: list[tuple[Any, Any]] = []
        start = 0
        while start < cut:
            end = cut
            if cut - start > PARSE_SLICE:
                end = start + (self._cut(data[start : start + PARSE_SLICE]) or cut - start)
            out.extend(self._lines(data[start:end], self.offset + start))
            start = end
            if start < cut:
                await pace()
        return out

    def _lines(self, chunk: bytes, base: int) -> list[tuple[Any, Any]]:
        """The records of `chunk` (whole records, read from byte `base`)."""
        out: list[tuple[Any, Any]] = []
        limit = base + len(chunk)
        if self.input_type == "JSONL":
            pos = base
            loads = json.loads
            for line in chunk.split(b"\n"):
                pos += len(line) + 1
                if not line.strip():
                    out.append((None, min(pos, limit)))
                    continue
                try:
                    out.append((loads(line), min(pos, limit)))
                except ValueError as exc:
                    raise ValueError(f"the line at byte {pos - len(line) - 1} is not JSON: {exc}") from None
            return out
        names = self.header or self.given
        consumed = [base]

        def lines():
            for raw in chunk.split(b"\n"):
                consumed[0] += len(raw) + 1
                yield raw.decode("utf-8", errors="strict") + "\n"

        try:
            for row in csv.reader(lines(), delimiter=self.delimiter):
                end = min(consumed[0], limit)
                if not row or row == [""]:
                    out.append((None, end))
                elif names is None:
                    self.header = names = row  # the header row: no item; later cursors carry it
                    out.append((None, end))
                else:
                    if len(row) < len(names):
                        row = row + [""] * (len(names) - len(row))
                    out.append((dict(zip(names, row, strict=False)), end))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"not valid CSV: {exc}") from None
        if not out:
            out.append((None, limit))
        return out

    @staticmethod
    def _cut(data: bytes) -> int:
        """Bytes up to the last newline that ends a record (outside a quoted CSV field)."""
        end = data.rfind(b"\n")
        while end >= 0:
            if data.count(b'"', 0, end) % 2 == 0:
                return end + 1
            end = data.rfind(b"\n", 0, end)
        return 0

    # -- a JSON array ------------------------------------------------------------------
    def _json(self, data: bytes, at_end: bool) -> list[tuple[Any, Any]] | None:
        base = self.offset
        text = data.decode("utf-8", errors="ignore" if not at_end else "strict")
        decoder = json.JSONDecoder()
        out: list[tuple[Any, Any]] = []
        i, n = 0, len(text)
        bytes_at = 0  # bytes of text[:i]

        def skip(i: int) -> int:
            while i < n and text[i] in " \t\r\n,":
                i += 1
            return i

        if not self.inside:
            i = skip(0)
            if i >= n:
                return None if not at_end else []
            if text[i] != "[":
                raise ValueError("a JSON InputType needs an array of items")
            i += 1
            bytes_at = len(text[:i].encode())
            out.append((None, base + bytes_at))
        while True:
            j = skip(i)
            if j < n and text[j] == "]":
                self.done = self.inside = True
                out.append((None, base + bytes_at + len(text[i : j + 1].encode())))
                return out
            if j >= n:
                if at_end:
                    raise ValueError("the JSON array is not closed")
                break
            try:
                item, k = decoder.raw_decode(text, j)
            except ValueError as exc:
                if at_end:
                    raise ValueError(f"invalid JSON: {exc}") from None
                break
            if k >= n and not at_end:
                break  # a number may go on in the next page
            bytes_at += len(text[i:k].encode())
            i = k
            out.append((item, base + bytes_at))
        if not any(item is not None for item, _ in out):
            return None  # not one whole item in this page: read a bigger one
        self.inside = True
        return out


class ListingSource(Source):
    """`s3:listObjectsV2`: every object as `{Key, Size, ETag, LastModified, StorageClass}`;
    the position is (continuation token of its page, keys of that page consumed)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.token: str | None = None
        self.skip = 0

    def start(self, cursor: dict[str, Any]) -> None:
        self.token, self.skip = cursor.get("tok"), cursor.get("k", 0)

    def cursor(self, pos: Any) -> dict[str, Any]:
        return {"tok": pos[0], "k": pos[1]}

    async def page(self) -> list[tuple[Any, Any]]:
        f = self.fetcher
        body: dict[str, Any] = {"operation": "list", "bucket": f.params["Bucket"], "max_keys": 1000}
        if f.params.get("Prefix"):
            body["prefix"] = f.params["Prefix"]
        if self.token:
            body["continuation_token"] = self.token
        if f.connection:
            body["connection"] = f.connection
        try:
            out = await f.engine.bus.invoke("s3", body, f.ctx())
        except BusError as exc:
            raise Failure(READER_FAILED, f"listing s3://{f.params['Bucket']}: {exc.error}: {exc.cause}") from None
        except AionixError as exc:
            raise Failure(READER_FAILED, f"listing s3://{f.params['Bucket']}: {exc.message}") from None
        entries = out.get("items") or []
        nxt = out.get("next_token") if out.get("truncated") else None
        items: list[tuple[Any, Any]] = []
        for k, e in enumerate(entries):
            if k < self.skip:
                continue
            pos = (nxt, 0) if k == len(entries) - 1 else (self.token, k + 1)
            item = {
                "Etag": f'"{e.get("etag", "")}"',
                "Key": e.get("key"),
                "LastModified": e.get("last_modified"),
                "Size": e.get("size"),
                "StorageClass": "STANDARD",
            }
            items.append((item, pos))
        if nxt is None:
            self.done = True
        elif not items:
            items.append((None, (nxt, 0)))
        self.token, self.skip = nxt, 0
        return items


class ManifestSource(Source):
    """`"InputType": "MANIFEST"`: an S3 Inventory `manifest.json` (read whole: it is small)
    whose `files` are CSV inventory files (gzip-compressed or not); each row is an item keyed
    by the manifest's `fileSchema` names ("Bucket, Key, Size, …"). Files are read in ranged
    pages and inflated with `zlib.decompressobj`; the position is (file index, inflated bytes
    of that file consumed), so a resume inflates that one file again from its start, skipping
    what was consumed. S3: file keys are keys of the manifest's `destinationBucket` (else the
    manifest's bucket). fs: a file key is a path relative to the manifest's directory, or,
    starting with `/`, relative to the tenant's root."""

    def __init__(self, fetcher: Fetcher, page_bytes: int) -> None:
        self.fetcher, self.page_bytes = fetcher, page_bytes
        self.files: list[str] | None = None
        self.parser: TextSource | None = None
        self.file, self.skip = 0, 0
        self._open(0, 0)

    def _open(self, file: int, skip: int) -> None:
        """Start file `file` from its beginning; `skip` inflated bytes are already consumed."""
        self.file, self.skip = file, skip
        self.coff = 0  # compressed bytes fetched
        self.used = 0  # inflated bytes consumed (rows handed out or skipped)
        self.buf = b""  # inflated bytes not yet parsed
        self.tail = b""  # compressed bytes not yet inflated
        self.inflate: Any = None  # a decompressobj once the file is known to be gzip; False: plain
        self.fetched_all = False

    def start(self, cursor: dict[str, Any]) -> None:
        self._open(cursor.get("mf", 0), cursor.get("off", 0))

    def cursor(self, pos: Any) -> dict[str, Any]:
        return {"mf": pos[0], "off": pos[1]}

    async def _manifest(self) -> None:
        f = self.fetcher
        data = b""
        while True:
            chunk, total = await f.fetch(len(data), self.page_bytes)
            data += chunk
            if not chunk or len(data) >= total:
                break
            if len(data) > MANIFEST_BYTES:
                raise Failure(READER_FAILED, f"{f.describe()}: the manifest is over {MANIFEST_BYTES} bytes")
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            files = doc.get("files")
            if not isinstance(files, list) or not all(
                isinstance(e, dict) and isinstance(e.get("key"), str) for e in files
            ):
                raise ValueError('"files" must be a list of {"key": …}')
            fmt = doc.get("fileFormat", "CSV")
            if fmt != "CSV":
                raise ValueError(f"fileFormat {fmt!r}: only CSV inventories are read")
            schema = doc.get("fileSchema")
            if not isinstance(schema, str) or not schema.strip():
                raise ValueError('"fileSchema" must name the columns ("Bucket, Key, …")')
        except ValueError as exc:
            raise Failure(READER_FAILED, f"{f.describe()}: not an S3 Inventory manifest: {exc}") from None
        names = [n.strip() for n in schema.split(",")]
        self.files = [e["key"] for e in files]
        self.parser = TextSource(f, "CSV", {"CSVHeaderLocation": "GIVEN", "CSVHeaders": names}, self.page_bytes)
        dest = doc.get("destinationBucket")
        self.bucket = dest.rsplit(":", 1)[-1] if isinstance(dest, str) and dest else f.params.get("Bucket")

    def _fetcher(self, key: str) -> Fetcher:
        f = self.fetcher
        if f.resource == FS_READ:
            base = f.params["Path"].rsplit("/", 1)[0] if "/" in f.params["Path"] else ""
            path = key.lstrip("/") if key.startswith("/") else (f"{base}/{key}" if base else key)
            return Fetcher(f.engine, f.run, FS_READ, {**f.params, "Path": path}, f.connection)
        return Fetcher(f.engine, f.run, S3_GET, {**f.params, "Bucket": self.bucket, "Key": key}, f.connection)

    async def _more(self, fetcher: Fetcher) -> None:
        """Inflate up to a page more of the current file into `buf`."""
        if not self.tail and not self.fetched_all:
            data, total = await fetcher.fetch(self.coff, self.page_bytes)
            self.coff += len(data)
            self.fetched_all = not data or self.coff >= total
            self.tail = data
            if self.inflate is None:
                self.inflate = zlib.decompressobj(31) if data[:2] == b"\x1f\x8b" else False
        if self.inflate is False:
            out, self.tail = self.tail, b""
        else:
            out = b""
            while self.tail and not out:
                out = self.inflate.decompress(self.tail, self.page_bytes * 4)
                self.tail = self.inflate.unconsumed_tail
                if self.inflate.eof:  # one gzip member ended: the next one (if any) follows
                    self.tail = self.inflate.unused_data  # (all the input after it)
                    self.inflate = zlib.decompressobj(31)
        if self.inflate and self.fetched_all and not self.tail:
            out += self.inflate.flush()  # what zlib still holds of the file's end
        if self.skip > self.used:  # resuming: drop what was consumed before
            drop = min(len(out), self.skip - self.used)
            out, self.used = out[drop:], self.used + drop
        self.buf += out

    async def page(self) -> list[tuple[Any, Any]]:
        if self.files is None:
            await self._manifest()
        assert self.files is not None and self.parser is not None
        while self.file < len(self.files):
            fetcher = self._fetcher(self.files[self.file])
            try:
                await self._more(fetcher)
            except zlib.error as exc:
                raise Failure(READER_FAILED, f"{fetcher.describe()}: not valid gzip: {exc}") from None
            at_end = self.fetched_all and not self.tail
            if self.buf:
                self.parser.offset = self.used
                try:
                    items = await self.parser._sliced(self.buf, at_end)
                except ValueError as exc:
                    raise Failure(READER_FAILED, f"{fetcher.describe()}: {exc}") from None
                if items:
                    end = items[-1][1]
                    self.buf = self.buf[end - self.used :]
                    self.used = end
                    file = self.file
                    out = [(item, (file, pos)) for item, pos in items]
                    if at_end and not self.buf:  # the file is done: the next starts after its last row
                        self._open(file + 1, 0)
                        out[-1] = (out[-1][0], (file + 1, 0))
                        self.done = self.file >= len(self.files)
                    return out
            if at_end:
                if self.buf:
                    raise Failure(READER_FAILED, f"{fetcher.describe()}: a record is cut short")
                self._open(self.file + 1, 0)
                if self.file >= len(self.files):
                    break
                return [(None, (self.file, 0))]
            if len(self.buf) > self.page_bytes * 16:
                raise Failure(READER_FAILED, f"{fetcher.describe()}: a record is larger than {len(self.buf)} bytes")
        self.done = True
        return []


# ---------------------------------------------------------------------------- the map run
@dataclass
class Batch:
    n: int
    child_id: str
    items: int
    status: str


class MapRun:
    def __init__(self, engine: Engine, run: Run, frame: Frame, plan: StatePlan, spec: Spec) -> None:
        self.engine, self.run, self.frame, self.plan, self.spec = engine, run, frame, plan, spec
        self.svc = engine.host
        self.store = self.svc.store
        attempt = frame.attempts.get(plan.name, 1)
        digest = hashlib.sha256(f"{run.id}|{frame.id}|{plan.name}|{attempt}".encode()).hexdigest()
        self.id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        self.arn = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:mapRun:{run.workflow}/{spec.label}:{self.id}"
        self.pending_status: list[dict[str, Any]] = []

    def data(self, frame: Frame | None = None) -> dict[str, Any]:
        f = frame or self.frame
        return {
            "input": f.input,
            "result": None,
            "vars": f.all_vars(),
            "error": None,
            "context": self.engine._context(self.run, f, self.plan),
            # `$secret`/`$param` in ItemReader/ItemBatcher/ResultWriter expressions, as the
            # engine read them when the state was entered
            "late": self.engine._late_bindings(self.run, self.plan, self.plan.references),
        }

    # -- setup ---------------------------------------------------------------------------
    async def source(self, d: dict[str, Any]) -> Source:
        spec, reader = self.spec, self.spec.reader
        if reader is None:
            items = await self.engine._eval(self.run, self.frame, self.plan, self.plan.items)
            if not isinstance(items, list):
                raise Failure(plan_mod.QUERY_EVALUATION, f"state {spec.name!r}: items must be an array")
            return ListSource(items)
        resource = reader["Resource"]
        params = spec.value(d, reader.get(spec.args_field, {}), f"ItemReader/{spec.args_field}")
        if not isinstance(params, dict):
            raise Failure(plan_mod.RUNTIME, f"state {spec.name!r}: ItemReader.{spec.args_field} must give an object")
        need = ("Path",) if resource == FS_READ else ("Bucket",) if resource == S3_LIST else ("Bucket", "Key")
        for name in need:
            if not isinstance(params.get(name), str) or not params[name]:
                raise Failure(
                    plan_mod.RUNTIME, f"state {spec.name!r}: ItemReader.{spec.args_field}.{name} must be a string"
                )
        connection = params.get("Connection")
        if resource != FS_READ and not connection:
            connection = self.svc.config.s3_connection
            if not connection:
                raise Failure(
                    plan_mod.RUNTIME,
                    f"state {spec.name!r}: no S3 connection: name one in ItemReader.{spec.args_field}.Connection "
                    "or set [stepflow] s3_connection",
                )
        fetcher = Fetcher(self.engine, self.run, resource, params, connection)
        if resource == S3_LIST:
            return ListingSource(fetcher)
        rc = reader.get("ReaderConfig") or {}
        if rc.get("InputType") == "MANIFEST":
            return ManifestSource(fetcher, self._page_bytes())
        return TextSource(fetcher, rc.get("InputType", "JSON"), rc, self._page_bytes())

    def _page_bytes(self) -> int:
        connectors = getattr(self.svc.rt, "services", {}).get("connectors")
        settings = getattr(connectors, "settings", None)
        cap = getattr(settings, "max_result_bytes", PAGE_BYTES)
        return max(4096, min(PAGE_BYTES, cap))

    # -- children --------------------------------------------------------------------------
    async def start_child(self, n: int, child_input: Any) -> str:
        from aionix.stepflow.service import new_execution_id
        from aionix.store.sqlite import UniqueViolation

        run, svc = self.run, self.svc
        key = f"maprun:{self.id}:{n}"
        machine = self.plan.processor
        assert machine is not None
        child = Run(
            id=new_execution_id(),
            tenant=run.tenant,
            workflow=run.workflow,
            version=run.version,
            plan=run.plan,
            root=Frame(id="r", machine=machine.path, state=machine.entry, input=child_input),
            input=child_input,
            started_at=time.time(),
            trace_id=run.trace_id,
            next_seq=1,
            parent_id=run.id,
        )
        child.idempotency_key = key
        child.redaction = SecretSet.within(run.redaction)
        child.event(
            "ExecutionStarted",
            detail={
                "input": child_input,
                "version": run.version,
                "parent_id": run.id,
                "map_run_id": self.id,
                "batch": n,
            },
        )
        svc._launch(child)
        try:
            await asyncio.shield(child.first_durable)
        except UniqueViolation:
            found = await self.store.fetch_one(
                "stepflow.execution_by_idempotency", {"tenant": run.tenant, "workflow": run.workflow, "key": key}
            )
            if found is None:
                raise
            return found["id"]
        return child.id

    async def watch(self, batch: Batch) -> dict[str, Any]:
        """The child's end: `{status, error}` (its input and output stay in the store)."""
        from aionix.stepflow.engine import TERMINAL

        while True:
            child = self.svc.runs.get(batch.child_id)
            if child is not None:
                await child.done.wait()
                if child.status in TERMINAL:
                    return {"status": child.status, "error": child.error}
            row = await self.store.fetch_one("stepflow_maps.child_status", {"id": batch.child_id})
            if row is None:
                return {
                    "status": "FAILED",
                    "error": {"error": plan_mod.RUNTIME, "cause": "the child execution is gone"},
                }
            if row["status"] in TERMINAL:
                return {"status": row["status"], "error": jsonutil.loads(row["error"]) if row["error"] else None}
            await asyncio.sleep(0.1)  # resumed by the service after a restart, not yet in memory

    async def abort(self, ids: list[str]) -> None:
        for child_id in ids:
            try:
                await self.svc.cancel(self.run.tenant, child_id, f"map run {self.id} failed")
            except AionixError:
                pass

    # -- the run ---------------------------------------------------------------------------
    async def execute(self) -> Any:
        engine, run, frame, plan, spec = self.engine, self.run, self.frame, self.plan, self.spec
        d = self.data()
        limit, count, pct = await engine._map_limits(run, frame, plan)
        cap = max(1, engine.max_map_concurrency)
        limit = min(limit, cap) if limit > 0 else min(DEFAULT_CONCURRENCY, cap)
        if count is None and pct is None:
            count = 0  # a distributed Map tolerates no failure unless told
        rc = (spec.reader or {}).get("ReaderConfig") or {}
        max_items = spec.count(d, rc, "MaxItems", "ItemReader/ReaderConfig") if spec.reader else None
        per_batch = spec.count(d, spec.batcher, "MaxItemsPerBatch", "ItemBatcher")
        batch_bytes = spec.count(d, spec.batcher, "MaxInputBytesPerBatch", "ItemBatcher")
        if spec.batcher is not None:
            per_batch = per_batch or None
            batch_bytes = min(batch_bytes or engine.payload_max_bytes, engine.payload_max_bytes)
        batch_input = None
        if spec.batcher is not None and "BatchInput" in spec.batcher:
            batch_input = spec.value(d, spec.batcher["BatchInput"], "ItemBatcher/BatchInput")
        select = spec.selector() if spec.reader is not None else None
        empty: dict[str, Any] = {"Items": []} if batch_input is None else {"BatchInput": batch_input, "Items": []}
        empty_size = len(jsonutil.dumps(empty))
        source = await self.source(d)

        now = time.time()
        await self.store.execute(
            "stepflow_maps.insert_map_run",
            {
                "id": self.id,
                "execution_id": run.id,
                "tenant": run.tenant,
                "state": plan.name,
                "cursor": "{}",
                "now": now,
            },
        )
        row = await self.store.fetch_one("stepflow_maps.get_map_run", {"id": self.id})
        assert row is not None
        cursor: dict[str, Any] = jsonutil.loads(row["cursor"])
        next_batch = row["next_batch"]
        reader_done = bool(row["reader_done"])
        # the batches started before (a resume or a redrive), a page at a time: only counters
        # and the running ones stay in memory
        redriving = run.redrive_count > row["redrive_count"]
        failed_items = total_items = succeeded_items = 0
        first_failed: str | None = None
        running: list[Batch] = []
        after = 0
        while page := await self.store.fetch_all(
            "stepflow_maps.batches", {"map_run_id": self.id, "after": after, "limit": 1000}
        ):
            after = page[-1]["batch"] + 1
            for r in page:
                b = Batch(r["batch"], r["child_id"], r["items"], r["status"])
                total_items += b.items
                if redriving and b.status in ("RUNNING", *_FAILED):
                    await self._redrive(b)
                if b.status == "SUCCEEDED":
                    succeeded_items += b.items
                elif b.status == "RUNNING":
                    running.append(b)
                else:
                    failed_items += b.items
                    first_failed = first_failed or b.child_id
        await self._flush_status()
        if redriving:
            await self.store.execute(
                "stepflow_maps.set_map_run_redrive",
                {"id": self.id, "redrive_count": run.redrive_count, "now": time.time()},
            )
        inflight: dict[asyncio.Future[Any], Batch] = {}
        for b in running:
            inflight[asyncio.ensure_future(self.watch(b))] = b
        del running
        source.start(cursor)
        buffered: deque[tuple[Any, Any]] = deque()
        index = cursor.get("n", 0)
        failure: Failure | None = None

        def exceeded(final: bool) -> bool:
            if failed_items == 0:
                return False
            if count is not None and failed_items <= count:
                return False
            if pct is not None and total_items:
                if not final:
                    return False  # a percentage needs the total: judged when the reader is done
                return failed_items * 100.0 / total_items > pct
            return True

        async def next_items() -> tuple[list[Any], dict[str, Any]] | None:
            """The next batch's items and the cursor after it (None: no more)."""
            nonlocal index, cursor
            items: list[Any] = []
            size = empty_size  # the batch's JSON without items: {"BatchInput": …, "Items": []}
            after: Any = None
            while True:
                if per_batch is not None and len(items) >= per_batch:
                    break
                if not spec.batcher and items:
                    break
                if max_items and index >= max_items:
                    break
                if not buffered:
                    if source.done:
                        break
                    buffered.extend(await source.page())
                    if not buffered:
                        break
                    continue
                item, position = buffered[0]
                if item is None:  # a header row, a blank line, the end of an array
                    buffered.popleft()
                    after = position
                    continue
                if select is not None:
                    item = select(d, index, item)
                if batch_bytes is not None:
                    item_size = len(jsonutil.dumps(item)) + (1 if items else 0)
                    if items and size + item_size > batch_bytes:
                        break
                    if empty_size + item_size > batch_bytes:
                        raise Failure(
                            plan_mod.RUNTIME,
                            f"state {spec.name!r}: item {index} is {item_size} bytes, over the batch limit of {batch_bytes}",
                        )
                    size += item_size
                buffered.popleft()
                items.append(item)
                index += 1
                after = position
            if after is not None:
                cursor = {**source.cursor(after), "n": index}
            if not items:
                return None
            return items, cursor

        try:
            while True:
                while not reader_done and failure is None and len(inflight) < limit:
                    got = await next_items()
                    if got is None:
                        reader_done = True
                        await self._advance(cursor, next_batch, True)
                        break
                    items, cursor = got
                    if spec.batcher is not None:
                        child_input: Any = {"Items": items}
                        if batch_input is not None:
                            child_input = {"BatchInput": batch_input, "Items": items}
                    else:
                        child_input = items[0]
                    await pace()
                    child_id = await self.start_child(next_batch, child_input)
                    b = Batch(next_batch, child_id, len(items), "RUNNING")
                    next_batch += 1
                    total_items += b.items
                    await self._advance(cursor, next_batch, False, b)
                    inflight[asyncio.ensure_future(self.watch(b))] = b
                if not inflight:
                    break
                done, _ = await asyncio.wait(list(inflight), return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: inflight[t].n):
                    b = inflight.pop(task)
                    envelope = task.result()
                    b.status = envelope["status"]
                    self.pending_status.append({"map_run_id": self.id, "batch": b.n, "status": b.status})
                    if b.status == "SUCCEEDED":
                        succeeded_items += b.items
                    else:
                        failed_items += b.items
                        first_failed = first_failed or b.child_id
                        if failure is None and exceeded(reader_done):
                            error = envelope.get("error") or {}
                            failure = Failure(
                                plan_mod.EXCEED_TOLERATED,
                                f"state {spec.name!r}: map run {self.id}: {failed_items} of {total_items} item(s) "
                                f"failed; first: {error.get('error')}: {error.get('cause')}",
                            )
                if len(self.pending_status) >= 100 or not inflight:
                    await self._flush_status()
                if failure is not None and inflight:
                    await self.abort([b.child_id for b in inflight.values()])
            if failure is None and exceeded(True):
                assert first_failed is not None
                env = await self.svc.envelope_by_id(first_failed)
                error = env.get("error") or {}
                failure = Failure(
                    plan_mod.EXCEED_TOLERATED,
                    f"state {spec.name!r}: map run {self.id}: {failed_items} of {total_items} item(s) failed; "
                    f"first: {error.get('error')}: {error.get('cause')}",
                )
        except BaseException:
            for task in inflight:
                task.cancel()
            if not self.svc._stopping:  # failed, timed out or cancelled: so are its children
                await self.abort([b.child_id for b in inflight.values()])
            raise
        finally:
            if self.pending_status:
                try:
                    await asyncio.shield(self._flush_status())
                except Exception:
                    pass
        summary = {
            "map_run_id": self.id,
            "batches": next_batch,
            "items": total_items,
            "succeeded": succeeded_items,
            "failed": failed_items,
        }
        output = await self.results(d) if spec.writer is not None else None
        if failure is not None:
            run.event("MapRunFailed", plan.name, frame.id, {**summary, **failure.as_dict()})
            raise failure
        if spec.writer is None:
            output = await self.collect()
        run.event("MapRunSucceeded", plan.name, frame.id, summary)
        return output

    async def _advance(self, cursor: dict[str, Any], next_batch: int, done: bool, batch: Batch | None = None) -> None:
        row = {
            "id": self.id,
            "cursor": jsonutil.dumps_text(cursor),
            "next_batch": next_batch,
            "reader_done": 1 if done else 0,
            "now": time.time(),
        }

        def tx_fn(tx: Any) -> None:
            if batch is not None:
                tx.execute(
                    "stepflow_maps.insert_batch",
                    {
                        "map_run_id": self.id,
                        "batch": batch.n,
                        "child_id": batch.child_id,
                        "items": batch.items,
                        "status": batch.status,
                    },
                )
            tx.execute("stepflow_maps.advance_map_run", row)

        await self.store.transaction(tx_fn)

    async def _flush_status(self) -> None:
        rows, self.pending_status = self.pending_status, []
        if rows:
            await self.store.transaction(lambda tx: tx.executemany("stepflow_maps.set_batch_status", rows))

    async def _redrive(self, b: Batch) -> None:
        """A redrive of the parent: a batch whose child did not succeed runs again (the same
        child execution, redriven: only its failed states)."""
        if b.status == "RUNNING":  # its end may not have been recorded here
            row = await self.store.fetch_one("stepflow_maps.child_status", {"id": b.child_id})
            b.status = row["status"] if row is not None else "FAILED"
        if b.status in _FAILED:
            await self.svc.redrive(self.run.tenant, b.child_id)
            b.status = "RUNNING"
        self.pending_status.append({"map_run_id": self.id, "batch": b.n, "status": b.status})

    # -- results ---------------------------------------------------------------------------
    async def _rows(self):
        after = 0
        while True:
            rows = await self.store.fetch_all(
                "stepflow_maps.batch_results", {"map_run_id": self.id, "after": after, "limit": 100}
            )
            for r in rows:
                yield r
            if len(rows) < 100:
                return
            after = rows[-1]["batch"] + 1

    async def collect(self) -> list[Any]:
        """The children's outputs (an error object for a tolerated failure), in batch order."""
        out: list[Any] = []
        async for r in self._rows():
            if r["status"] == "SUCCEEDED":
                out.append(jsonutil.loads(r["output"]) if r["output"] is not None else None)
            else:
                error = jsonutil.loads(r["error"]) if r["error"] else {}
                out.append({"Error": error.get("error"), "Cause": error.get("cause")})
            if len(out) % 1000 == 0:
                await asyncio.sleep(0)
        self.engine._check_size(out, self.spec.name)
        return out

    def _entry(self, r: dict[str, Any]) -> dict[str, Any]:
        run = self.run
        machine_arn = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{run.workflow}/{self.spec.label}"
        entry: dict[str, Any] = {
            "ExecutionArn": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:{run.workflow}/{self.spec.label}:{r['child_id']}",
            "Input": r["input"] if r["input"] is not None else "null",
            "InputDetails": {"Included": True},
            "Name": r["child_id"],
            "RedriveCount": r["redrive_count"] or 0,
            "RedriveStatus": "NOT_REDRIVABLE" if r["status"] == "SUCCEEDED" else "REDRIVABLE",
            "StartDate": iso(r["started_at"]),
            "StateMachineArn": machine_arn,
            "Status": r["status"],
            "StopDate": iso(r["stopped_at"]) if r["stopped_at"] else None,
        }
        if r["status"] == "SUCCEEDED":
            entry["Output"] = r["output"] if r["output"] is not None else "null"
            entry["OutputDetails"] = {"Included": True}
        else:
            error = jsonutil.loads(r["error"]) if r["error"] else {}
            entry["Error"] = error.get("error")
            entry["Cause"] = error.get("cause")
        return entry

    async def results(self, d: dict[str, Any]) -> dict[str, Any]:
        """Write `manifest.json` and `SUCCEEDED_n.json`/`FAILED_n.json` like Step Functions."""
        spec = self.spec
        writer = spec.writer or {}
        params = spec.value(d, writer.get(spec.args_field, {}), f"ResultWriter/{spec.args_field}")
        if not isinstance(params, dict):
            raise Failure(plan_mod.RUNTIME, f"state {spec.name!r}: ResultWriter.{spec.args_field} must give an object")
        resource = writer["Resource"]
        prefix = str(params.get("Prefix") or "").strip("/")
        if resource == S3_PUT:
            if not isinstance(params.get("Bucket"), str):
                raise Failure(
                    plan_mod.RUNTIME, f"state {spec.name!r}: ResultWriter.{spec.args_field}.Bucket must be a string"
                )
            connection = params.get("Connection") or self.svc.config.s3_connection
            if not connection:
                raise Failure(
                    plan_mod.RUNTIME,
                    f"state {spec.name!r}: no S3 connection: name one in ResultWriter.{spec.args_field}.Connection "
                    "or set [stepflow] s3_connection",
                )
        else:
            connection = params.get("Connection")
            if not prefix:
                raise Failure(
                    plan_mod.RUNTIME,
                    f"state {spec.name!r}: ResultWriter.{spec.args_field}.Prefix must name a directory",
                )
        base = f"{prefix}/{self.id}" if prefix else self.id
        files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        parts: dict[str, list[bytes]] = {"SUCCEEDED": [], "FAILED": []}
        sizes = {"SUCCEEDED": 0, "FAILED": 0}

        async def put(name: str, body: bytes) -> None:
            key = f"{base}/{name}"
            if resource == S3_PUT:
                call: dict[str, Any] = {
                    "operation": "put",
                    "bucket": params["Bucket"],
                    "key": key,
                    "content": body.decode("utf-8"),
                    "content_type": "application/json",
                    "connection": connection,
                }
                target = "s3"
            else:
                call = {"operation": "write", "path": key, "content": body.decode("utf-8")}
                if connection:
                    call["connection"] = connection
                target = "fs"
            ctx = CallContext(
                tenant=self.run.tenant,
                trace_id=self.run.trace_id,
                caller=self.run.caller_trn,
                secrets=self.run.redaction,
                on_behalf_of=self.run.on_behalf_of,
            )
            try:
                await self.engine.bus.invoke(target, call, ctx)
            except BusError as exc:
                raise Failure(WRITER_FAILED, f"writing {key}: {exc.error}: {exc.cause}") from None
            except AionixError as exc:
                raise Failure(WRITER_FAILED, f"writing {key}: {exc.message}") from None

        async def flush(kind: str) -> None:
            if not parts[kind]:
                return
            name = f"{kind}_{len(files[kind])}.json"
            body = b"[" + b",".join(parts[kind]) + b"]"
            await put(name, body)
            files[kind].append({"Key": f"{base}/{name}", "Size": len(body)})
            parts[kind], sizes[kind] = [], 0

        async for r in self._rows():
            kind = "SUCCEEDED" if r["status"] == "SUCCEEDED" else "FAILED"
            text = jsonutil.dumps(self.run.redaction.value(self._entry(r)))
            if parts[kind] and (sizes[kind] + len(text) > RESULT_FILE_BYTES or len(parts[kind]) >= RESULT_FILE_ENTRIES):
                await flush(kind)
            parts[kind].append(text)
            sizes[kind] += len(text) + 1
        await flush("SUCCEEDED")
        await flush("FAILED")
        manifest: dict[str, Any] = {"MapRunArn": self.arn, "ResultFiles": files}
        if resource == S3_PUT:
            manifest = {"DestinationBucket": params["Bucket"], **manifest}
        await put("manifest.json", jsonutil.dumps(manifest))
        details = {"Key": f"{base}/manifest.json"}
        if resource == S3_PUT:
            details = {"Bucket": params["Bucket"], **details}
        return {"MapRunArn": self.arn, "ResultWriterDetails": details}


_FAILED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


async def run_map(engine: Engine, run: Run, frame: Frame, plan: StatePlan) -> Any:
    """The engine's entry point for a Map state whose plan carries a distributed `Spec`."""
    spec: Spec = plan.distributed
    if getattr(engine.host, "store", None) is None:  # `aio wf test`: no server, no child executions
        raise Failure(
            plan_mod.RUNTIME,
            f"state {plan.name!r}: a distributed Map runs child executions on a server; "
            "the local runner (aio wf test) runs inline Maps only",
        )
    if frame.phase != "children":
        frame.attempts[plan.name] = frame.attempts.get(plan.name, 0) + 1
        frame.phase = "children"
        mr = MapRun(engine, run, frame, plan, spec)
        run.event(
            "MapRunStarted",
            plan.name,
            frame.id,
            {"map_run_id": mr.id, "map_run_arn": mr.arn, "execution_type": spec.execution_type},
        )
        await engine.checkpoint(run)
    else:
        mr = MapRun(engine, run, frame, plan, spec)
    with _frozen_heap():
        return await mr.execute()


_running = [0, 0]  # map runs going on; whether the first froze the heap (and the last gives it back)


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """While map runs go on, what the process held when the first began is left out of the
    garbage collector's full collections (`gc.freeze`; given back by `gc.unfreeze` when the
    last ends). A map run allocates millions of short-lived rows, which triggers many full
    collections: each would walk the server's whole heap (modules, plans, caches), 50-150 ms
    on a busy machine, holding the event loop — measured as /healthz p99 > 200 ms over a
    1,000,000-row CSV without this, < 100 ms with it."""
    if _running[0] == 0:
        # the server froze its start-up heap already (aionix/server.py tune_gc): that stays
        # frozen, and a map run neither adds to it nor gives it back
        _running[1] = gc.get_freeze_count() == 0
        if _running[1]:
            gc.freeze()
    _running[0] += 1
    try:
        yield
    finally:
        _running[0] -= 1
        if _running[0] == 0 and _running[1]:
            gc.unfreeze()
