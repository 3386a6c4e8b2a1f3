"""GPU scheduling and secrets.

This machine has no GPU (no nvidia-smi, no /dev/nvidia*, /dev/kfd or /dev/dri): the scheduler's
logic is tested with an injected device list — a fake standing in for real devices — and the
real server is checked to refuse GPU functions clearly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import confinement, create, invoke, unique

from aionix.functions.gpu import Device, GpuScheduler, NoGpu, detect_devices

ENV_SOURCE = (
    "import os\n\ndef handler(event, context):\n    return {k: v for k, v in os.environ.items() if k in event}\n"
)


def test_detection_reads_device_nodes_and_render_vendors(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    drm = tmp_path / "drm"
    dev.mkdir()
    for node in ("nvidia0", "nvidia1", "nvidiactl", "kfd"):
        (dev / node).write_text("")
    for render, vendor in (("renderD128", "0x1002"), ("renderD129", "0x8086")):
        (drm / render / "device").mkdir(parents=True)
        (drm / render / "device" / "vendor").write_text(vendor + "\n")
    found = detect_devices(dev, drm)
    assert {(d.vendor, d.index) for d in found} >= {("nvidia", 0), ("nvidia", 1), ("amd", 0), ("intel", 0)}
    # with no device nodes only nvidia-smi (absent here) could report anything
    assert all(d.vendor == "nvidia" for d in detect_devices(tmp_path / "none", tmp_path / "none"))


def test_scheduler_never_oversubscribes_a_device() -> None:
    async def scenario() -> None:
        devices = [Device("nvidia", 0, "fake A"), Device("nvidia", 1, "fake B")]
        sched = GpuScheduler(devices, per_device=1)
        active: dict[int, int] = {0: 0, 1: 0}
        peak = {0: 0, 1: 0}

        async def job() -> None:
            got = await sched.acquire("nvidia", 1, True)
            assert GpuScheduler.environment("nvidia", got) == {"CUDA_VISIBLE_DEVICES": str(got[0])}
            for i in got:
                active[i] += 1
                peak[i] = max(peak[i], active[i])
            await asyncio.sleep(0.01)
            for i in got:
                active[i] -= 1
            await sched.release("nvidia", got)

        await asyncio.wait_for(asyncio.gather(*(job() for _ in range(20))), 30)
        assert peak == {0: 1, 1: 1}
        both = await sched.acquire("nvidia", 2, True)
        assert both == [0, 1]
        waiter = asyncio.ensure_future(sched.acquire("nvidia", 1, True))
        await asyncio.sleep(0.05)
        assert not waiter.done(), "a third invocation waits for a free device"
        await sched.release("nvidia", both)
        assert len(await asyncio.wait_for(waiter, 5)) == 1
        shared = GpuScheduler([Device("amd", 0, "fake")], per_device=2)
        assert await shared.acquire("amd", 1, True) == [0]
        assert await shared.acquire("amd", 1, True) == [0]
        assert GpuScheduler.environment("amd", [0]) == {"HIP_VISIBLE_DEVICES": "0"}
        assert GpuScheduler.environment("intel", [0, 1]) == {"ZE_AFFINITY_MASK": "0,1"}

    asyncio.run(scenario())


def test_scheduler_refuses_what_the_host_lacks() -> None:
    sched = GpuScheduler([Device("nvidia", 0, "fake")], per_device=1)
    with pytest.raises(NoGpu, match="1 nvidia GPU, the function requires 2 nvidia GPUs"):
        sched.check("nvidia", 2, True)
    with pytest.raises(NoGpu, match="0 amd GPUs"):
        sched.check("amd", 1, True)
    sched.check("amd", 1, False)
    assert asyncio.run(sched.acquire("amd", 1, False)) == [], "an optional GPU runs without one"
    assert asyncio.run(sched.acquire("none", 1, True)) == []


def test_server_without_gpus_refuses_gpu_functions_clearly(fn) -> None:
    devices = confinement(fn)["gpu"]["devices"]
    body = {
        "name": unique("gpu"),
        "runtime": "python",
        "code": {"source": ENV_SOURCE},
        "resources": {"gpu": {"vendor": "nvidia", "count": 1, "required": True}},
    }
    r = fn.post("/api/v1/functions", json=body)
    if not any(d.startswith("nvidia") for d in devices):
        assert r.status_code == 422 and "resources.gpu" in r.text and "nvidia" in r.text
        optional = create(
            fn, "python", ENV_SOURCE, resources={"gpu": {"vendor": "nvidia", "count": 1, "required": False}}
        )
        assert invoke(fn, optional["name"], {"CUDA_VISIBLE_DEVICES": 1})["result"] == {}
    else:
        assert r.status_code == 201
        assert "CUDA_VISIBLE_DEVICES" in invoke(fn, body["name"], {"CUDA_VISIBLE_DEVICES": 1})["result"]


def test_declared_secret_that_cannot_be_read_fails_clearly(fn) -> None:
    name = create(fn, "python", ENV_SOURCE, secrets=[unique("absent")])["name"]
    record = invoke(fn, name, {})
    assert record["status"] == "FAILED"
    assert record["error"]["error"] == "Function.SecretUnavailable"
    assert "secret" in record["error"]["errorMessage"]


def test_granted_secret_reaches_only_its_function(fn) -> None:
    secret = unique("db-password").replace("-", "_")
    r = fn.post("/api/v1/secrets", json={"name": secret, "type": "password", "value": "s3cret-value"})
    assert r.status_code == 201, r.text
    reader = create(fn, "python", ENV_SOURCE, secrets=[secret])["name"]
    # it has the value (returned, so masked in the record: a value never reaches a viewer)
    assert invoke(fn, reader, {secret: 1})["result"] == {secret: "***"}
    other = create(fn, "python", ENV_SOURCE)["name"]
    assert invoke(fn, other, {secret: 1})["result"] == {}
    logs = fn.get(f"/api/v1/functions/{reader}/logs").json()["items"]
    assert "s3cret-value" not in str(logs)


def test_gpu_example_is_scheduled_or_refused(fn, fn_server, monkeypatch, capsys) -> None:
    from aionix.cli.main import run

    monkeypatch.setenv("AIONIX_URL", fn_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", fn_server.admin_key)
    example = Path(__file__).parents[2] / "examples" / "functions" / "gpu-info"
    code = run(["fn", "deploy", str(example), "-o", "json"])
    out = capsys.readouterr()
    devices = confinement(fn)["gpu"]["devices"]
    if any(d.startswith("nvidia") for d in devices):
        assert code == 0, out.err
        assert invoke(fn, "gpu-info", {})["result"]["cuda_visible_devices"] == "0"
    else:
        assert code == 2 and "resources.gpu" in out.err and "nvidia" in out.err
