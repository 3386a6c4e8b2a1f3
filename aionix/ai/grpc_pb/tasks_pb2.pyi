from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("intent", "params", "privacy", "budget_usd", "latency_ms", "max_tokens", "wait", "trace_id")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    intent: str
    params: _struct_pb2.Struct
    privacy: str
    budget_usd: float
    latency_ms: int
    max_tokens: int
    wait: bool
    trace_id: str
    def __init__(self, intent: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., privacy: _Optional[str] = ..., budget_usd: _Optional[float] = ..., latency_ms: _Optional[int] = ..., max_tokens: _Optional[int] = ..., wait: _Optional[bool] = ..., trace_id: _Optional[str] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("task_id", "after")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    after: int
    def __init__(self, task_id: _Optional[str] = ..., after: _Optional[int] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class Engine(_message.Message):
    __slots__ = ("route", "provider", "model", "tier", "chosen_by", "reason")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    route: str
    provider: str
    model: str
    tier: str
    chosen_by: str
    reason: str
    def __init__(self, route: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., tier: _Optional[str] = ..., chosen_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("latency_ms", "tokens_in", "tokens_out", "cost_usd", "capped")
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_IN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_OUT_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    CAPPED_FIELD_NUMBER: _ClassVar[int]
    latency_ms: float
    tokens_in: int
    tokens_out: int
    cost_usd: float
    capped: bool
    def __init__(self, latency_ms: _Optional[float] = ..., tokens_in: _Optional[int] = ..., tokens_out: _Optional[int] = ..., cost_usd: _Optional[float] = ..., capped: _Optional[bool] = ...) -> None: ...

class TaskError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TaskEnvelope(_message.Message):
    __slots__ = ("schema_version", "task_id", "trn", "intent", "status", "engine", "result", "usage", "error", "trace_id")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TRN_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    schema_version: str
    task_id: str
    trn: str
    intent: str
    status: str
    engine: Engine
    result: _struct_pb2.Value
    usage: Usage
    error: TaskError
    trace_id: str
    def __init__(self, schema_version: _Optional[str] = ..., task_id: _Optional[str] = ..., trn: _Optional[str] = ..., intent: _Optional[str] = ..., status: _Optional[str] = ..., engine: _Optional[_Union[Engine, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., error: _Optional[_Union[TaskError, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "id", "event", "data", "envelope")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    id: int
    event: str
    data: _struct_pb2.Struct
    envelope: TaskEnvelope
    def __init__(self, task_id: _Optional[str] = ..., id: _Optional[int] = ..., event: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., envelope: _Optional[_Union[TaskEnvelope, _Mapping]] = ...) -> None: ...
