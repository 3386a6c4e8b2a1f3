"""Build the example modules from source (`make modules`): WAT is assembled to WebAssembly with
wasmtime's `wat2wasm`, each package is packed as an OCI image-layout tar and signed with the
TEST-ONLY key in keys/ (see keys/README.md).

    python examples/modules/build.py [OUT_DIR]      # default: build/modules
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from aionix.modules import oci

HERE = Path(__file__).resolve().parent
EXAMPLES = ("summarize_text", "text_extract")
TEST_KEY = HERE / "keys" / "test-signing-key-DO-NOT-USE.key"


def stage(example: Path, out: Path) -> Path:
    """A copy of the package source with every .wat assembled to .wasm."""
    import wasmtime

    target = out / "src" / example.name
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(example.rglob("*")):
        rel = path.relative_to(example)
        if path.is_dir() or "__pycache__" in rel.parts:
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".wat":
            dest.with_suffix(".wasm").write_bytes(wasmtime.wat2wasm(path.read_text()))
        else:
            shutil.copyfile(path, dest)
    return target


def build(name: str, out: Path, key: Path = TEST_KEY) -> Path:
    src = stage(HERE / name, out)
    layout = oci.pack_dir(src)
    oci.sign(layout, oci.load_private_key(key.read_bytes()), reference=f"aionix.local/modules/{name}")
    ann = layout.manifest["annotations"]
    tar = out / f"{name}-{ann['org.opencontainers.image.version']}.tar"
    tar.write_bytes(oci.layout_tar(layout))
    return tar


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("build/modules")
    out.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLES:
        tar = build(name, out)
        print(f"{tar}  ({tar.stat().st_size} bytes, signed with the TEST key)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
