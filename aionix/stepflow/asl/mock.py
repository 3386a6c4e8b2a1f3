"""The AWS Step Functions Local MockConfigFile format, so definitions that call AWS services can
be unit-tested offline.

    {"StateMachines": {"Machine": {"TestCases": {"HappyPath": {"StateName": "ResponseName"}}}},
     "MockedResponses": {"ResponseName": {"0": {"Return": {...}}, "1-2": {"Throw": {"Error": "E", "Cause": "C"}}}}}

Each Task state named in the test case answers its n-th invocation (0-based, counted per state)
with the response whose key is `n` or a range `a-b` holding `n`: `Return` is the task result,
`Throw` fails the task with `Error`/`Cause` (retried and caught like any error).
"""

from __future__ import annotations

from typing import Any

from aionix.bus import BusError, CallContext
from aionix.errors import field_error

MOCK_KIND = "asl-mock"


def _invocations(key: str) -> range:
    if "-" in key:
        a, b = key.split("-", 1)
        return range(int(a), int(b) + 1)
    n = int(key)
    return range(n, n + 1)


def check_config(config: Any) -> None:
    """Raise a field error naming the first malformed part of a mock config."""
    if not isinstance(config, dict):
        raise field_error("mock_config", "a mock config must be a JSON object")
    machines = config.get("StateMachines", {})
    responses = config.get("MockedResponses", {})
    if not isinstance(machines, dict):
        raise field_error("StateMachines", "must be an object of state machine names")
    if not isinstance(responses, dict):
        raise field_error("MockedResponses", "must be an object of response names")
    for mname, machine in machines.items():
        cases = machine.get("TestCases") if isinstance(machine, dict) else None
        if not isinstance(cases, dict):
            raise field_error(f"StateMachines.{mname}.TestCases", "must be an object of test cases")
        for cname, case in cases.items():
            if not isinstance(case, dict):
                raise field_error(f"StateMachines.{mname}.TestCases.{cname}", "must map state names to responses")
            for state, response in case.items():
                if response not in responses:
                    raise field_error(
                        f"StateMachines.{mname}.TestCases.{cname}.{state}",
                        f"names the mocked response {response!r}, which MockedResponses does not define",
                    )
    for rname, response in responses.items():
        if not isinstance(response, dict) or not response:
            raise field_error(f"MockedResponses.{rname}", "must map invocation numbers to Return or Throw")
        for key, answer in response.items():
            try:
                _invocations(key)
            except ValueError:
                raise field_error(
                    f"MockedResponses.{rname}.{key}", "must be an invocation number or a range a-b"
                ) from None
            if not isinstance(answer, dict) or len({"Return", "Throw"} & answer.keys()) != 1:
                raise field_error(f"MockedResponses.{rname}.{key}", "must hold exactly one of Return or Throw")
            throw = answer.get("Throw")
            if throw is not None and not (isinstance(throw, dict) and isinstance(throw.get("Error"), str)):
                raise field_error(f"MockedResponses.{rname}.{key}.Throw", "must be {Error, Cause}")


class MockResponder:
    """Answers the mocked Task states of one test case; a bus executor for `MOCK_KIND`."""

    def __init__(self, config: dict[str, Any], machine: str | None, test_case: str) -> None:
        check_config(config)
        machines = config.get("StateMachines", {})
        if machine is None:
            found = [m for m, body in machines.items() if test_case in body.get("TestCases", {})]
            if not found:
                raise field_error("test_case", f"no state machine in the mock config has the test case {test_case!r}")
            machine = found[0]
        if machine not in machines:
            raise field_error("state_machine", f"the mock config has no state machine {machine!r}")
        cases = machines[machine]["TestCases"]
        if test_case not in cases:
            raise field_error("test_case", f"state machine {machine!r} has no test case {test_case!r}")
        self.case: dict[str, str] = cases[test_case]
        self.responses: dict[str, dict[str, Any]] = config.get("MockedResponses", {})
        self.calls: dict[str, int] = {}

    async def execute(self, target: Any, payload: Any, ctx: CallContext) -> Any:
        state = payload.get("state") if isinstance(payload, dict) else None
        resource = payload.get("resource") if isinstance(payload, dict) else None
        if state not in self.case:
            raise BusError(
                "States.TaskFailed", f"state {state!r} calls {resource} and the test case mocks no response for it"
            )
        n = self.calls.get(state, 0)
        self.calls[state] = n + 1
        response = self.responses[self.case[state]]
        for key, answer in response.items():
            if n in _invocations(key):
                if "Throw" in answer:
                    throw = answer["Throw"]
                    raise BusError(throw["Error"], throw.get("Cause") or "")
                return answer["Return"]
        raise BusError(
            "States.TaskFailed",
            f"the mocked response {self.case[state]!r} has no answer for invocation {n} of {state!r}",
        )
