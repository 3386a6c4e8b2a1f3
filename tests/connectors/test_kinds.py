"""The kind framework: a missing optional client library gives a clear "install" error, and
every kind publishes valid schemas."""

from __future__ import annotations

import pytest

from aionix.bus import BusError
from aionix.connectors.kind import ConnectorKind, require_module
from aionix.connectors.kinds import load_kinds


def test_missing_optional_package_says_what_to_install():
    kind = ConnectorKind(
        name="ghost", title="", error_prefix="Ghost", operations={}, extra="ghost", module="aionix_no_such_client"
    )
    assert kind.available() is False
    with pytest.raises(BusError) as info:
        require_module(kind)
    assert info.value.error == "Ghost.NotInstalled"
    assert "pip install 'aionix[ghost]'" in info.value.cause


def test_every_kind_describes_its_operations():
    kinds = load_kinds()
    assert set(kinds) == {"http", "sql", "redis", "s3", "email", "slack", "discord", "fs", "transform"}
    for kind in kinds.values():
        described = kind.describe()
        assert described["operations"], kind.name
        for op in described["operations"]:
            assert op["parameters"]["type"] == "object"
            assert op["parameters"]["additionalProperties"] is False
            assert "timeout" in op["parameters"]["properties"]
        if kind.connection_model is not None:
            assert described["connection_schema"]["additionalProperties"] is False
        assert kind.default_operation is None or kind.default_operation in kind.operations
