"""Builders for test agent packages: a directory (manifest, code, schemas, SBOM) packed into an
OCI image layout tar and signed with a throwaway key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from aionix.modules import oci

# a WASI command that copies stdin to stdout (the JSON input is its output)
ECHO_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $n i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 65536))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      (if (i32.gt_u (local.get $n) (i32.const 0))
        (then
          (i32.store (i32.const 4) (local.get $n))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
          (br $more)))))
)
"""
SPIN_WAT = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
GROW_WAT = '(module (memory (export "memory") 1) (func (export "_start") (drop (memory.grow (i32.const 8000))) (i32.store (i32.const 500000000) (i32.const 1))))'

TEXT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
ANY_SCHEMA = {"type": "object"}


def keypair(kind: str = "ecdsa") -> tuple[Any, str]:
    key: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa" else ed25519.Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pub.decode()


def manifest(name: str, kind: str = "wasm", **over: Any) -> dict[str, Any]:
    ep: dict[str, Any] = {"schema": {"input": "schemas/input.json", "output": "schemas/output.json"}}
    if kind == "wasm":
        ep["module"] = "module.wat"
    else:
        ep["command"] = ["python3", "main.py"]
    doc: dict[str, Any] = {
        "apiVersion": "aionos/v1",
        "kind": "AgentPackage",
        "metadata": {
            "name": name,
            "version": "1.0.0",
            "license": "Apache-2.0",
            "authors": ["test"],
            "sbom": "sbom.cdx.json",
        },
        "runtime": {"type": kind, "resources": {"cpu": 1, "memory": "128Mi"}},
        "permissions": {"filesystem": "read-only", "network": "deny", "secrets": []},
        "entrypoints": {"main": ep},
        "intents": ["summarize"],
        "policies": {"timeout_ms": 5000, "retries": 0},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(doc.get(k), dict):
            doc[k] = {**doc[k], **v}
        else:
            doc[k] = v
    return doc


def write_dir(
    root: Path,
    doc: dict[str, Any],
    *,
    code: dict[str, str] | None = None,
    input_schema: Any = TEXT_SCHEMA,
    output_schema: Any = TEXT_SCHEMA,
    sbom: Any = "default",
) -> Path:
    d = root / f"{doc['metadata']['name']}-{doc['metadata']['version']}"
    (d / "schemas").mkdir(parents=True, exist_ok=True)
    (d / "manifest.yaml").write_text(yaml.safe_dump(doc))
    for name, text in (code if code is not None else {"module.wat": ECHO_WAT}).items():
        (d / name).write_text(text)
    (d / "schemas/input.json").write_text(json.dumps(input_schema))
    (d / "schemas/output.json").write_text(json.dumps(output_schema))
    if sbom == "default":
        sbom = {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "metadata": {
                "component": {
                    "type": "application",
                    "name": doc["metadata"]["name"],
                    "version": doc["metadata"]["version"],
                }
            },
            "components": [],
        }
    if sbom is not None:
        (d / "sbom.cdx.json").write_text(sbom if isinstance(sbom, str) else json.dumps(sbom))
    return d


def build(directory: Path, key: Any = None) -> tuple[bytes, oci.Layout]:
    layout = oci.pack_dir(directory)
    if key is not None:
        oci.sign(layout, key)
    return oci.layout_tar(layout), layout
