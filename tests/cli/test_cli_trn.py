"""TRN-first: every resource argument takes a full TRN or a short name; a TRN of another
service is a usage error naming the expected one."""

import json
import uuid

import pytest

from aionix.cli.client import CLIError, rewrite_trn_path
from aionix.cli.main import run


@pytest.fixture
def cli(server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)

    def invoke(*args):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_short_names_and_trns_reach_the_same_resource(cli):
    name = "trn-" + uuid.uuid4().hex[:8]
    assert cli("sec", "create", name, "--value", "s3cret-value")[0] == 0
    by_name = json.loads(cli("-o", "json", "sec", "get", name)[1])
    code, out, _ = cli("-o", "json", "sec", "get", f"trn:credvault:default:credential/{name}")
    assert code == 0 and json.loads(out) == by_name
    assert "s3cret-value" not in out
    assert cli("param", "set", f"/{name}/db/host", "db.local")[0] == 0
    code, out, _ = cli("-o", "json", "param", "get", f"trn:paramstore:default:param/{name}/db/host")
    assert code == 0 and json.loads(out)["value"] == "db.local"
    code, out, _ = cli("-o", "json", "param", "versions", f"trn:paramstore:default:param/{name}/db/host")
    assert code == 0 and json.loads(out)["items"]


def test_a_trn_of_another_service_names_the_expected_one(cli):
    code, _, err = cli("sec", "get", "trn:aionixfn:default:function/pay")
    assert code == 2 and "expected a trn:credvault:<tenant>:credential/" in err
    code, _, err = cli("tr", "get", "trn:stepflow:default:template/x")
    assert code == 2 and "expected a trn:igniter:<tenant>:trigger/" in err
    code, _, err = cli("sec", "get", "trn:credvault:Bad:credential/x")
    assert code == 2 and "position" in err


def test_rewrite_covers_qualifiers_and_multi_segment_paths():
    params: dict = {}
    assert (
        rewrite_trn_path("/api/v1/functions/trn:aionixfn:t:function/f:live/invoke", params)
        == "/api/v1/functions/f/invoke"
    )
    assert params == {"qualifier": "live"}
    assert (
        rewrite_trn_path("/api/v1/connections/trn:openact:t:connection/http/gh/test", {})
        == "/api/v1/connections/gh/test"
    )
    assert rewrite_trn_path("/api/v1/params/trn:paramstore:t:param/a/b/versions", {}) == "/api/v1/params/a/b/versions"
    assert rewrite_trn_path("/api/v1/workflows/plain", {}) == "/api/v1/workflows/plain"
    with pytest.raises(CLIError):
        rewrite_trn_path("/api/v1/workflows/trn:igniter:t:trigger/x", {})
