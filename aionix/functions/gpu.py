"""GPU devices for functions that declare `resources.gpu`.

`detect_devices()` looks for NVIDIA (`nvidia-smi -L`, else `/dev/nvidiaN`), AMD (`/dev/kfd` +
render nodes) and Intel (render nodes whose PCI vendor is 0x8086). `GpuScheduler` hands out
device indexes so that no device serves more concurrent invocations than `per_device`, and
exposes them to the child through `CUDA_VISIBLE_DEVICES` / `HIP_VISIBLE_DEVICES` /
`ZE_AFFINITY_MASK`. A host without a device of the requested vendor is refused clearly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aionix.errors import ValidationFailed

VISIBLE_ENV = {"nvidia": "CUDA_VISIBLE_DEVICES", "amd": "HIP_VISIBLE_DEVICES", "intel": "ZE_AFFINITY_MASK"}


@dataclass(frozen=True)
class Device:
    vendor: str
    index: int
    name: str


def detect_devices(dev: Path = Path("/dev"), sys_drm: Path = Path("/sys/class/drm")) -> list[Device]:
    found: list[Device] = []
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
            for line in out.splitlines():
                m = re.match(r"GPU (\d+): (.*?)( \(UUID.*)?$", line.strip())
                if m:
                    found.append(Device("nvidia", int(m.group(1)), m.group(2)))
    if not any(d.vendor == "nvidia" for d in found):
        for node in sorted(dev.glob("nvidia[0-9]*")):
            found.append(Device("nvidia", int(node.name[6:]), node.name))
    renders = sorted(sys_drm.glob("renderD*")) if sys_drm.exists() else []
    amd = intel = 0
    for render in renders:
        try:
            vendor = (render / "device" / "vendor").read_text().strip()
        except OSError:
            continue
        if vendor == "0x1002" and (dev / "kfd").exists():
            found.append(Device("amd", amd, render.name))
            amd += 1
        elif vendor == "0x8086":
            found.append(Device("intel", intel, render.name))
            intel += 1
    return found


class NoGpu(ValidationFailed):
    code = "gpu_unavailable"


class GpuScheduler:
    """Assigns device indexes to invocations, at most `per_device` at a time per device."""

    def __init__(self, devices: list[Device], per_device: int) -> None:
        self.devices = devices
        self.per_device = per_device
        self.in_use: dict[tuple[str, int], int] = {(d.vendor, d.index): 0 for d in devices}
        self._changed = asyncio.Condition()

    def describe(self) -> dict[str, object]:
        return {"devices": [f"{d.vendor}:{d.index} {d.name}" for d in self.devices], "per_device": self.per_device}

    def check(self, vendor: str, count: int, required: bool) -> None:
        """Refuse a request this host can never satisfy (deploy time and invoke time)."""
        if vendor == "none" or count == 0:
            return
        have = sum(1 for d in self.devices if d.vendor == vendor)
        if required and have < count:
            what = f"{count} {vendor} GPU{'s' if count > 1 else ''}"
            raise NoGpu(
                f"resources.gpu: this host has {have} {vendor} GPU{'s' if have != 1 else ''}, the function requires {what}",
                details=[{"field": "resources.gpu", "message": f"host has {have} {vendor} GPU(s), {count} required"}],
            )

    def _free(self, vendor: str, count: int) -> list[int] | None:
        free = [
            d.index for d in self.devices if d.vendor == vendor and self.in_use[(vendor, d.index)] < self.per_device
        ]
        if len(free) < count:
            return None
        free.sort(key=lambda i: self.in_use[(vendor, i)])
        return sorted(free[:count])

    async def acquire(self, vendor: str, count: int, required: bool) -> list[int]:
        """Wait for `count` devices of `vendor`; [] when none are needed or optional and absent."""
        if vendor == "none" or count == 0:
            return []
        self.check(vendor, count, required)
        if not any(d.vendor == vendor for d in self.devices):
            return []
        async with self._changed:
            while (chosen := self._free(vendor, count)) is None:
                await self._changed.wait()
            for i in chosen:
                self.in_use[(vendor, i)] += 1
            return chosen

    async def release(self, vendor: str, indexes: list[int]) -> None:
        async with self._changed:
            for i in indexes:
                self.in_use[(vendor, i)] -= 1
            self._changed.notify_all()

    @staticmethod
    def environment(vendor: str, indexes: list[int]) -> dict[str, str]:
        if not indexes:
            return {}
        return {VISIBLE_ENV[vendor]: ",".join(str(i) for i in indexes)}
