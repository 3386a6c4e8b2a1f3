"""An AionixFn GPU module: the scheduler sets CUDA_VISIBLE_DEVICES to the device it assigned."""

import os
import shutil
import subprocess


def handler(event, context):
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    smi = shutil.which("nvidia-smi")
    gpus = []
    if smi:
        out = subprocess.run([smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"], capture_output=True, text=True, timeout=15)
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return {"cuda_visible_devices": visible, "gpus": gpus}
