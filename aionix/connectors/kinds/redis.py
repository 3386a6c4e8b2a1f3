"""`redis`: strings (get/set/del/incr/expire), hashes, lists, publish and streams (add/read),
with redis-py's asyncio client (`pip install 'aionix[redis]'`). Values that are not strings
are stored as JSON; `get` can parse them back."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from aionix import jsonutil
from aionix.connectors.kind import ConnectionConfig, ConnectorKind, Invocation, Operation, Params, truncate_text


class RedisConnection(ConnectionConfig):
    host: str = "127.0.0.1"
    port: int = Field(6379, ge=1, le=65535)
    db: int = Field(0, ge=0, le=1000)
    username: str | None = None
    password_secret: str | None = Field(None, description="CredVault credential holding the password")
    tls: bool = False
    pool_size: int = Field(10, ge=1, le=1000)
    allow_hosts: list[str] = Field(default_factory=list, description="SSRF guard exceptions (admin only)")


class KeyParams(Params):
    key: str = Field(..., min_length=1, max_length=65_536)


class GetParams(KeyParams):
    parse_json: bool = Field(False, description="parse the stored value as JSON")


class SetParams(KeyParams):
    value: Any = Field(..., description="strings are stored as is, anything else as JSON")
    ex: int | None = Field(None, ge=1, description="expire after this many seconds")
    nx: bool = Field(False, description="only set when the key does not exist")


class DelParams(Params):
    keys: list[str] = Field(..., min_length=1, max_length=10_000)


class IncrParams(KeyParams):
    by: int = 1


class ExpireParams(KeyParams):
    seconds: int = Field(..., ge=0)


class HashSetParams(KeyParams):
    fields: dict[str, Any] = Field(..., min_length=1)


class HashGetParams(KeyParams):
    field: str | None = Field(None, description="one field; omit for the whole hash")


class HashDelParams(KeyParams):
    fields: list[str] = Field(..., min_length=1)


class PushParams(KeyParams):
    values: list[Any] = Field(..., min_length=1)
    left: bool = Field(False, description="LPUSH instead of RPUSH")


class PopParams(KeyParams):
    left: bool = True


class RangeParams(KeyParams):
    start: int = 0
    stop: int = -1


class PublishParams(Params):
    channel: str = Field(..., min_length=1)
    message: Any


class StreamAddParams(KeyParams):
    fields: dict[str, Any] = Field(..., min_length=1)
    id: str = "*"
    maxlen: int | None = Field(None, ge=1, description="trim the stream to about this length")


class StreamReadParams(KeyParams):
    after: str = Field("0-0", description="read entries after this id ($ for only new ones)")
    count: int = Field(100, ge=1, le=10_000)
    block_ms: int | None = Field(None, ge=0, le=600_000, description="wait this long for entries")


def _encode(value: Any) -> str | int | float:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    return jsonutil.dumps(value).decode()


def _decode(value: Any, parse: bool) -> Any:
    if value is None or not parse:
        return value
    try:
        return jsonutil.loads(value)
    except orjson.JSONDecodeError:
        return value


class Budget:
    """Counts result bytes; `take` answers False once the limit is passed."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.truncated = False

    def take(self, *values: Any) -> bool:
        self.left -= sum(len(str(v)) for v in values)
        if self.left < 0:
            self.truncated = True
        return not self.truncated


async def _map(coro: Any) -> Any:
    import redis.exceptions as rx

    try:
        return await coro
    except rx.AuthenticationError as exc:
        raise KIND.error("AuthError", str(exc)) from None
    except rx.AuthorizationError as exc:
        raise KIND.error("AuthError", str(exc)) from None
    except rx.TimeoutError as exc:
        raise KIND.error("Timeout", str(exc) or "the server did not answer in time") from None
    except rx.ConnectionError as exc:
        raise KIND.error("ConnectionError", str(exc)) from None
    except rx.ResponseError as exc:
        message = str(exc)
        if message.startswith(("NOAUTH", "WRONGPASS")):
            raise KIND.error("AuthError", message) from None
        raise KIND.error("Error", message) from None
    except rx.RedisError as exc:
        raise KIND.error("Error", str(exc)) from None


async def run_get(call: Invocation) -> dict[str, Any]:
    p: GetParams = call.params
    value = await _map(call.resource().get(p.key))
    truncated = False
    if isinstance(value, str):
        cut, truncated = truncate_text(value, call.max_result_bytes)
        value = cut if truncated else _decode(value, p.parse_json)
    return {"key": p.key, "exists": value is not None, "value": value, "truncated": truncated}


async def run_set(call: Invocation) -> dict[str, Any]:
    p: SetParams = call.params
    done = await _map(call.resource().set(p.key, _encode(p.value), ex=p.ex, nx=p.nx))
    return {"key": p.key, "set": bool(done)}


async def run_del(call: Invocation) -> dict[str, Any]:
    return {"deleted": await _map(call.resource().delete(*call.params.keys))}


async def run_incr(call: Invocation) -> dict[str, Any]:
    p: IncrParams = call.params
    return {"key": p.key, "value": await _map(call.resource().incrby(p.key, p.by))}


async def run_expire(call: Invocation) -> dict[str, Any]:
    p: ExpireParams = call.params
    return {"key": p.key, "set": bool(await _map(call.resource().expire(p.key, p.seconds)))}


async def run_hset(call: Invocation) -> dict[str, Any]:
    p: HashSetParams = call.params
    added = await _map(call.resource().hset(p.key, mapping={k: _encode(v) for k, v in p.fields.items()}))
    return {"key": p.key, "added": added}


async def run_hget(call: Invocation) -> dict[str, Any]:
    p: HashGetParams = call.params
    if p.field is not None:
        value = await _map(call.resource().hget(p.key, p.field))
        cut, truncated = truncate_text(value, call.max_result_bytes) if isinstance(value, str) else (value, False)
        return {"key": p.key, "value": cut, "truncated": truncated}
    budget = Budget(call.max_result_bytes)
    fields: dict[str, Any] = {}
    for name, value in (await _map(call.resource().hgetall(p.key))).items():
        if not budget.take(name, value):
            break
        fields[name] = value
    return {"key": p.key, "fields": fields, "truncated": budget.truncated}


async def run_hdel(call: Invocation) -> dict[str, Any]:
    p: HashDelParams = call.params
    return {"key": p.key, "deleted": await _map(call.resource().hdel(p.key, *p.fields))}


async def run_push(call: Invocation) -> dict[str, Any]:
    p: PushParams = call.params
    client = call.resource()
    fn = client.lpush if p.left else client.rpush
    return {"key": p.key, "length": await _map(fn(p.key, *[_encode(v) for v in p.values]))}


async def run_pop(call: Invocation) -> dict[str, Any]:
    p: PopParams = call.params
    client = call.resource()
    value = await _map((client.lpop if p.left else client.rpop)(p.key))
    return {"key": p.key, "value": value}


async def run_range(call: Invocation) -> dict[str, Any]:
    p: RangeParams = call.params
    values = await _map(call.resource().lrange(p.key, p.start, p.stop))
    budget = Budget(call.max_result_bytes)
    out = []
    for v in values:
        if not budget.take(v):
            break
        out.append(v)
    return {"key": p.key, "values": out, "truncated": budget.truncated}


async def run_publish(call: Invocation) -> dict[str, Any]:
    p: PublishParams = call.params
    return {"channel": p.channel, "receivers": await _map(call.resource().publish(p.channel, _encode(p.message)))}


async def run_xadd(call: Invocation) -> dict[str, Any]:
    p: StreamAddParams = call.params
    entry_id = await _map(
        call.resource().xadd(
            p.key,
            {k: _encode(v) for k, v in p.fields.items()},
            id=p.id,
            maxlen=p.maxlen,
            approximate=p.maxlen is not None,
        )
    )
    return {"key": p.key, "id": entry_id}


async def run_xread(call: Invocation) -> dict[str, Any]:
    p: StreamReadParams = call.params
    answer = await _map(call.resource().xread({p.key: p.after}, count=p.count, block=p.block_ms))
    budget = Budget(call.max_result_bytes)
    entries = []
    for _stream, items in answer or []:
        for entry_id, fields in items:
            if not budget.take(entry_id, *fields.keys(), *fields.values()):
                break
            entries.append({"id": entry_id, "fields": fields})
    last = entries[-1]["id"] if entries else p.after
    return {"key": p.key, "entries": entries, "last_id": last, "truncated": budget.truncated}


async def open_client(conn: Any) -> Any:
    from aionix.connectors.kind import require_module

    require_module(KIND)
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    c: RedisConnection = conn.config
    address = await conn.service.vet_endpoint(conn, c.host, c.port)
    password = await conn.secret(c.password_secret) if c.password_secret else None
    timeout = c.timeout_seconds or conn.service.settings.timeout_seconds
    return aioredis.Redis(
        host=address,  # the vetted address: never a second lookup
        ssl_check_hostname=False,
        port=c.port,
        db=c.db,
        username=c.username,
        password=password,
        ssl=c.tls,
        decode_responses=True,
        max_connections=c.pool_size,
        socket_connect_timeout=min(timeout, 10),
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # workflows retry with their own policy
    )


async def close_client(client: Any) -> None:
    await client.aclose()


async def test_connection(conn: Any, settings: Any) -> dict[str, Any]:
    pong = await _map(conn.resource.ping())
    return {"ok": bool(pong), "detail": "PING answered PONG"}


def _op(name: str, description: str, params: type[Params], run: Any) -> Operation:
    return Operation(name, description, params, {"type": "object"}, run)


KIND = ConnectorKind(
    name="redis",
    title="Redis",
    error_prefix="Redis",
    connection_model=RedisConnection,
    requires_connection=True,
    default_operation=None,
    extra="redis",
    module="redis.asyncio",
    operations={
        op.name: op
        for op in (
            _op("get", "GET a key", GetParams, run_get),
            _op("set", "SET a key (optional expiry, only-if-absent)", SetParams, run_set),
            _op("del", "DEL keys", DelParams, run_del),
            _op("incr", "INCRBY a counter", IncrParams, run_incr),
            _op("expire", "EXPIRE a key", ExpireParams, run_expire),
            _op("hset", "HSET fields of a hash", HashSetParams, run_hset),
            _op("hget", "HGET one field, or the whole hash", HashGetParams, run_hget),
            _op("hdel", "HDEL fields", HashDelParams, run_hdel),
            _op("push", "RPUSH (or LPUSH) values to a list", PushParams, run_push),
            _op("pop", "LPOP (or RPOP) a value", PopParams, run_pop),
            _op("range", "LRANGE a list", RangeParams, run_range),
            _op("publish", "PUBLISH a message", PublishParams, run_publish),
            _op("xadd", "XADD an entry to a stream", StreamAddParams, run_xadd),
            _op("xread", "XREAD entries after an id", StreamReadParams, run_xread),
        )
    },
    open=open_client,
    close=close_client,
    test=test_connection,
    examples=[{"connection": "cache", "operation": "set", "key": "order:42", "value": {"total": 9.5}, "ex": 3600}],
)
