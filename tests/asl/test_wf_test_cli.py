"""`aio wf test`: ASL definitions that call AWS services, run offline against a MockConfigFile."""

from __future__ import annotations

import json
import uuid

import pytest

from aionix.cli.main import run

DEFINITION = {
    "Comment": "order pipeline",
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "charge", "Payload.$": "$"},
            "ResultSelector": {"charged.$": "$.Payload.charged"},
            "ResultPath": "$.charge",
            "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 2, "MaxAttempts": 3}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refund"}],
            "Next": "Notify",
        },
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "https://sqs/q", "MessageBody.$": "$.charge"},
            "ResultPath": None,
            "End": True,
        },
        "Refund": {"Type": "Fail", "Error": "ChargeFailed", "CausePath": "$.error.Cause"},
    },
}
MOCKS = {
    "StateMachines": {
        "Orders": {
            "TestCases": {
                "HappyPath": {"Charge": "ChargeOk", "Notify": "Sent"},
                "RetryPath": {"Charge": "ThrottledTwiceThenOk", "Notify": "Sent"},
                "FailPath": {"Charge": "Broken"},
            }
        }
    },
    "MockedResponses": {
        "ChargeOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"charged": 42}}}},
        "ThrottledTwiceThenOk": {
            "0-1": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "slow down"}},
            "2": {"Return": {"StatusCode": 200, "Payload": {"charged": 7}}},
        },
        "Broken": {"0": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "card declined"}}},
        "Sent": {"0": {"Return": {"MessageId": "m-1"}}},
    },
}


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "sm.asl.json"
    d.write_text(json.dumps(DEFINITION))
    m = tmp_path / "mocks.json"
    m.write_text(json.dumps(MOCKS))
    return str(d), str(m)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_happy_path_uses_the_mocked_returns(files, capsys):
    d, m = files
    code, out, err = cli(
        capsys, "wf", "test", d, "--mock-config", m, "--test-case", "HappyPath", "--input", '{"id": 1}'
    )
    assert code == 0, err
    result = json.loads(out)
    assert result == {"status": "SUCCEEDED", "output": {"id": 1, "charge": {"charged": 42}}}


def test_retry_path_counts_invocations_and_history_is_aws_shaped(files, capsys):
    d, m = files
    code, out, err = cli(
        capsys, "wf", "test", d, "--mock-config", m, "--test-case", "RetryPath", "--input", "{}", "--history"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["output"] == {"charge": {"charged": 7}}
    types = [e["type"] for e in result["history"]]
    assert types.count("TaskScheduled") == 4 and types.count("TaskFailed") == 2
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"


def test_fail_path_is_caught_and_exits_nonzero(files, capsys):
    d, m = files
    code, out, err = cli(capsys, "wf", "test", d, "--mock-config", m, "--test-case", "FailPath")
    assert code == 1
    assert json.loads(out) == {"status": "FAILED", "error": "ChargeFailed", "cause": "card declined"}
    assert "FAILED" in err


def test_bad_mock_config_and_unknown_test_case_are_usage_errors(files, tmp_path, capsys):
    d, m = files
    code, _, err = cli(capsys, "wf", "test", d, "--mock-config", m, "--test-case", "Nope")
    assert code == 2 and "Nope" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"StateMachines": {"S": {"TestCases": {"T": {"Charge": "Missing"}}}}}))
    code, _, err = cli(capsys, "wf", "test", d, "--mock-config", str(bad), "--test-case", "T")
    assert code == 2 and "Missing" in err


def test_without_a_mock_config_aws_integrations_are_rejected(files, capsys):
    d, _ = files
    code, _, err = cli(capsys, "wf", "test", d)
    assert code == 2 and "mock config" in err


@pytest.fixture
def server_cli(server, monkeypatch, capsys):
    monkeypatch.setenv("AIONIX_URL", server.url)
    monkeypatch.setenv("AIONIX_API_KEY", server.admin_key)
    return lambda *args: cli(capsys, *args)


def test_create_validate_and_start_an_asl_file_on_the_server(server_cli, tmp_path):
    f = tmp_path / "hello.asl.json"
    f.write_text(
        json.dumps(
            {
                "StartAt": "Hi",
                "States": {
                    "Hi": {"Type": "Pass", "Parameters": {"msg.$": "States.Format('hi {}', $.who)"}, "End": True}
                },
            }
        )
    )
    code, out, err = server_cli("wf", "validate", str(f))
    assert code == 0 and "valid" in out, err
    name = f"asl-cli-{uuid.uuid4().hex[:8]}"
    code, out, err = server_cli("wf", "create", name, str(f))
    assert code == 0, err
    code, out, err = server_cli("-o", "json", "wf", "start", name, "--sync", "-i", '{"who": "ada"}')
    assert code == 0, err
    assert json.loads(out)["output"] == {"msg": "hi ada"}
    bad = tmp_path / "bad.asl.json"
    bad.write_text(json.dumps({"StartAt": "X", "States": {"Y": {"Type": "Pass", "End": True}}}))
    code, out, _ = server_cli("wf", "validate", str(bad))
    assert code == 1 and "/StartAt" in out
