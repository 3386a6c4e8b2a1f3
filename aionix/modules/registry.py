"""Agent packages in an OCI registry, through the ORAS client library (`oras` on PyPI, the
`aionix[oras]` extra): push a package (its blobs, its manifest byte for byte so the digest and
the signatures stay valid, and each cosign signature under the `sha256-<hex>.sig` tag, a Sigstore bundle under `.sigstore`) and pull
one back into an in-memory layout. Runs in the CLI: the server never reaches out to registries;
it receives the pulled package like an uploaded tar."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aionix.modules import oci


class RegistryError(Exception):
    pass


def _client(reference: str, insecure: bool) -> tuple[Any, Any]:
    try:
        import oras.provider
    except ImportError:
        raise RegistryError("registry support needs the ORAS client: pip install 'aionix[oras]'") from None
    host = reference.split("/", 1)[0]
    reg = oras.provider.Registry(host, insecure=insecure, auth_backend="basic")
    try:
        container = reg.get_container(reference)
    except Exception as exc:
        raise RegistryError(f"{reference}: not a registry reference (HOST[:PORT]/REPO:TAG): {exc}") from None
    return reg, container


def _check(response: Any, what: str) -> Any:
    if response.status_code >= 300:
        raise RegistryError(f"{what}: registry answered {response.status_code}: {response.text[:300]}")
    return response


def _put_manifest(reg: Any, container: Any, data: bytes) -> None:
    _check(
        reg.do_request(
            f"{reg.prefix}://{container.manifest_url()}",
            "PUT",
            headers={"Content-Type": oci.IMAGE_MANIFEST},
            data=data,
        ),
        f"PUT manifest {container.uri}",
    )


def _upload(reg: Any, container: Any, blobs: dict[str, bytes], descs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for desc in descs:
            path = Path(tmp) / desc["digest"].split(":", 1)[1]
            path.write_bytes(blobs[desc["digest"]])
            layer = {"digest": desc["digest"], "size": desc["size"], "mediaType": desc["mediaType"]}
            if reg.blob_exists(layer, container):
                continue
            _check(reg.upload_blob(str(path), container, layer), f"upload {desc['digest']}")


def push(layout: oci.Layout, reference: str, *, insecure: bool = False) -> str:
    """Push the package to `HOST/REPO:TAG`; its manifest digest (unchanged) is returned."""
    reg, container = _client(reference, insecure)
    manifest = layout.manifest
    _upload(reg, container, layout.blobs, [manifest["config"], *manifest["layers"]])
    _put_manifest(reg, container, layout.blobs[layout.manifest_digest])
    repo = reference.rsplit(":", 1)[0] if ":" in reference.split("/", 1)[-1] else reference
    for sig in layout.signature_manifests:
        data = json.dumps(sig, sort_keys=True, separators=(",", ":")).encode()
        suffix = ".sigstore" if sig.get("artifactType") == oci.SIGSTORE_BUNDLE else ".sig"
        sig_ref = f"{repo}:{layout.manifest_digest.replace(':', '-')}{suffix}"
        _, sig_container = _client(sig_ref, insecure)
        _upload(reg, sig_container, layout.blobs, [sig["config"], *sig["layers"]])
        _put_manifest(reg, sig_container, data)
    return layout.manifest_digest


def _get_manifest(reg: Any, container: Any) -> bytes | None:
    response = reg.do_request(
        f"{reg.prefix}://{container.manifest_url()}", "GET", headers={"Accept": oci.IMAGE_MANIFEST}
    )
    if response.status_code == 404:
        return None
    return _check(response, f"GET manifest {container.uri}").content


def _download(reg: Any, container: Any, desc: dict[str, Any], tmp: str, max_bytes: int) -> bytes:
    if int(desc.get("size", 0)) > max_bytes:
        raise RegistryError(f"blob {desc.get('digest')} is larger than {max_bytes} bytes")
    out = Path(tmp) / desc["digest"].split(":", 1)[1]
    reg.download_blob(container, desc["digest"], str(out))
    return out.read_bytes()


def pull(reference: str, *, insecure: bool = False, max_bytes: int = 64 << 20) -> oci.Layout:
    """The package at `HOST/REPO:TAG` (with its cosign signatures) as a layout. Digests are not
    trusted here: the server checks every blob and signature when it is installed."""
    reg, container = _client(reference, insecure)
    raw = _get_manifest(reg, container)
    if raw is None:
        raise RegistryError(f"{reference}: no such manifest in the registry")
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise RegistryError(f"{reference}: the manifest is not JSON") from None
    digest = oci.digest_of(raw)
    blobs: dict[str, bytes] = {digest: raw}
    with tempfile.TemporaryDirectory() as tmp:
        for desc in [manifest.get("config", {}), *manifest.get("layers", [])]:
            blobs[desc["digest"]] = _download(reg, container, desc, tmp, max_bytes)
        repo = reference.rsplit(":", 1)[0] if ":" in reference.split("/", 1)[-1] else reference
        sigs = []
        for suffix in (".sig", ".sigstore"):  # cosign's tag, and a Sigstore bundle's
            _, sig_container = _client(f"{repo}:{digest.replace(':', '-')}{suffix}", insecure)
            sig_raw = _get_manifest(reg, sig_container)
            if sig_raw is None:
                continue
            sig = json.loads(sig_raw)
            for desc in [sig.get("config", {}), *sig.get("layers", [])]:
                blobs[desc["digest"]] = _download(reg, sig_container, desc, tmp, 1 << 20)
            sigs.append(sig)
    return oci.Layout(blobs=blobs, manifest_digest=digest, manifest=manifest, signature_manifests=sigs)
