"""Agent packages as OCI artifacts: an OCI image layout (directory or tar) holding an image
manifest whose layers are the package manifest (`manifest.yaml`), the code (a gzipped tar), the
input/output JSON Schemas and the SBOM; signatures are cosign-style signature manifests beside
it (`sha256-<digest>.sig`: a simple-signing payload naming the artifact's manifest digest, its
signature in the `dev.cosignproject.cosign/signature` annotation).

Everything here is offline and pure: packing, reading (with size and path checks), signing and
verifying signatures with `cryptography`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ARTIFACT_TYPE = "application/vnd.aionos.agentpackage.v1"
CONFIG_TYPE = "application/vnd.aionos.agentpackage.config.v1+json"
MANIFEST_LAYER = "application/vnd.aionos.agentpackage.manifest.v1+yaml"
CODE_LAYER = "application/vnd.aionos.agentpackage.code.v1.tar+gzip"
SCHEMA_LAYER = "application/schema+json"
SBOM_TYPES = {"application/vnd.cyclonedx+json": "cyclonedx", "application/spdx+json": "spdx"}
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIG = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
SIGSTORE_PREFIX = "application/vnd.dev.sigstore.bundle"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
TITLE = "org.opencontainers.image.title"
REF = "org.opencontainers.image.ref.name"
EMPTY_CONFIG = b"{}"


MAX_MANIFEST_BYTES = 256 * 1024


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors/aliases: a manifest has no use for them, and alias expansion is a
    memory bomb."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed in a manifest", event.start_mark)
        return super().compose_node(parent, index)


def load_manifest_yaml(raw: bytes) -> Any:
    """Parse manifest YAML/JSON bytes; `yaml.YAMLError` for anything unusable."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise yaml.YAMLError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return yaml.load(raw, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


class PackageError(ValueError):
    """A package that cannot be read at all (not a layout, bad tar, over the size limit)."""

    def __init__(self, message: str, field: str = "package") -> None:
        super().__init__(message)
        self.field = field


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _desc(media_type: str, data: bytes, title: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}
    if title:
        d["annotations"] = {TITLE: title}
    return d


def _canon(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _tar_bytes(files: dict[str, bytes], gz: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def clean_path(name: str, field: str = "package") -> str:
    norm = posixpath.normpath(name.replace("\\", "/"))
    if norm.startswith(("/", "../")) or norm in ("..", ".", "") or "\x00" in norm:
        raise PackageError(f"{field}: unsafe path {name!r}", field)
    return norm


def _read_tar(data: bytes, max_bytes: int, field: str) -> dict[str, bytes]:
    """Regular files of a (gzipped) tar, paths checked, total size bounded."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise PackageError(f"{field}: not a gzip stream: {exc}", field) from None
        if len(data) > max_bytes:
            raise PackageError(f"{field}: larger than {max_bytes} bytes unpacked", field)
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise PackageError(f"{field}: {member.name!r} is not a regular file", field)
                total += member.size
                if total > max_bytes:
                    raise PackageError(f"{field}: larger than {max_bytes} bytes", field)
                f = tar.extractfile(member)
                assert f is not None
                files[clean_path(member.name, field)] = f.read()
    except tarfile.TarError as exc:
        raise PackageError(f"{field}: not a tar archive: {exc}", field) from None
    return files


# ---------------------------------------------------------------------- reading
@dataclass
class Layout:
    """An OCI image layout in memory: its blobs and the artifact's manifest."""

    blobs: dict[str, bytes]
    manifest_digest: str
    manifest: dict[str, Any]
    signature_manifests: list[dict[str, Any]] = field(default_factory=list)

    def layer(self, media_type: str) -> dict[str, Any] | None:
        for layer in self.manifest.get("layers", []):
            if layer.get("mediaType") == media_type:
                return layer
        return None

    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    def blob(self, desc: dict[str, Any]) -> bytes:
        return self.blobs[desc["digest"]]

    def tampered(self) -> list[str]:
        """Layers (and config) whose bytes do not match their digests."""
        bad = []
        for desc in [self.manifest.get("config", {}), *self.layers()]:
            data = self.blobs.get(desc.get("digest", ""))
            title = (desc.get("annotations") or {}).get(TITLE, desc.get("mediaType", "?"))
            if data is None:
                bad.append(f"{title}: blob {desc.get('digest')} missing")
            elif digest_of(data) != desc.get("digest") or len(data) != desc.get("size"):
                bad.append(f"{title}: content does not match digest {desc.get('digest')}")
        return bad


def read_layout(source: bytes | Path, max_bytes: int) -> Layout:
    """A layout from tar bytes (plain or gzipped) or a directory."""
    if isinstance(source, Path):
        files: dict[str, bytes] = {}
        total = 0
        for path in sorted(source.rglob("*")):
            if path.is_symlink():
                raise PackageError(f"package: {path} is a symlink")
            if path.is_file():
                total += path.stat().st_size
                if total > max_bytes:
                    raise PackageError(f"package: larger than {max_bytes} bytes")
                files[path.relative_to(source).as_posix()] = path.read_bytes()
    else:
        if len(source) > max_bytes:
            raise PackageError(f"package: larger than {max_bytes} bytes")
        files = _read_tar(source, max_bytes, "package")
    if "index.json" not in files or "oci-layout" not in files:
        raise PackageError("package: not an OCI image layout (index.json and oci-layout are required)")
    blobs: dict[str, bytes] = {}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            blobs["sha256:" + name.rsplit("/", 1)[1]] = data
    try:
        index = json.loads(files["index.json"])
        entries = list(index["manifests"])
    except (ValueError, KeyError, TypeError):
        raise PackageError("package: index.json is not an OCI image index") from None
    artifact: tuple[str, dict[str, Any]] | None = None
    sigs: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        d = entry.get("digest", "")
        data = blobs.get(d)
        if data is None:
            raise PackageError(f"package: manifest {d} named by index.json is missing")
        if digest_of(data) != d:
            raise PackageError(f"package: manifest {d} does not match its digest")
        try:
            doc = json.loads(data)
        except ValueError:
            raise PackageError(f"package: manifest {d} is not JSON") from None
        layers = doc.get("layers") or []
        if doc.get("artifactType") == ARTIFACT_TYPE or (doc.get("config") or {}).get("mediaType") == CONFIG_TYPE:
            if artifact is not None:
                raise PackageError("package: more than one agent package in the layout")
            artifact = (d, doc)
        elif any(isinstance(x, dict) and _signature_layer(x.get("mediaType")) for x in layers):
            sigs.append(doc)
    if artifact is None:
        raise PackageError(f"package: no manifest with artifactType {ARTIFACT_TYPE}")
    return Layout(blobs=blobs, manifest_digest=artifact[0], manifest=artifact[1], signature_manifests=sigs)


def package_files(layout: Layout) -> tuple[bytes | None, dict[str, bytes], dict[str, bytes], tuple[str, bytes] | None]:
    """(manifest.yaml, code files, schema files by title, (sbom format, sbom bytes))."""
    man = layout.layer(MANIFEST_LAYER)
    manifest = layout.blobs.get(man["digest"]) if man else None
    code: dict[str, bytes] = {}
    schemas: dict[str, bytes] = {}
    sbom = None
    for desc in layout.layers():
        data = layout.blobs.get(desc.get("digest", ""))
        if data is None or digest_of(data) != desc.get("digest"):
            continue  # a missing or altered layer is reported by `Layout.tampered`
        mt = desc.get("mediaType")
        title = (desc.get("annotations") or {}).get(TITLE, "")
        if mt == CODE_LAYER:
            code = _read_tar(data, 512 << 20, "code")
        elif mt == SCHEMA_LAYER:
            schemas[title] = data
        elif mt in SBOM_TYPES:
            sbom = (SBOM_TYPES[mt], data)
    return manifest, code, schemas, sbom


# ---------------------------------------------------------------------- packing
def pack_dir(directory: Path) -> Layout:
    """A layout from a package directory: `manifest.yaml`, the SBOM and schema files it names,
    everything else is code."""
    mpath = directory / "manifest.yaml"
    if not mpath.is_file():
        raise PackageError(f"{directory}: no manifest.yaml", "manifest")
    raw_manifest = mpath.read_bytes()
    try:
        doc = load_manifest_yaml(raw_manifest)
    except yaml.YAMLError as exc:
        raise PackageError(f"manifest.yaml: not YAML: {exc}", "manifest") from None
    if not isinstance(doc, dict):
        raise PackageError("manifest.yaml: not a mapping", "manifest")
    meta = doc.get("metadata") or {}
    sbom_name = meta.get("sbom")
    schema_names: set[str] = set()
    for ep in (doc.get("entrypoints") or {}).values():
        for key in ("input", "output"):
            name = ((ep or {}).get("schema") or {}).get(key)
            if isinstance(name, str):
                schema_names.add(clean_path(name, "entrypoints.schema"))
    code: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if not path.is_file() or rel == "manifest.yaml" or rel == sbom_name or rel in schema_names:
            continue
        if "__pycache__" in rel or rel.endswith((".pyc", ".tar")) or rel.startswith(("build/", ".")):
            continue
        code[rel] = path.read_bytes()
    blobs: dict[str, bytes] = {}
    layers = []

    def add(media_type: str, data: bytes, title: str) -> None:
        blobs[digest_of(data)] = data
        layers.append(_desc(media_type, data, title))

    add(MANIFEST_LAYER, raw_manifest, "manifest.yaml")
    add(CODE_LAYER, _tar_bytes(code, gz=True), "code.tar.gz")
    for name in sorted(schema_names):
        add(SCHEMA_LAYER, (directory / name).read_bytes(), name)
    if isinstance(sbom_name, str) and (directory / sbom_name).is_file():
        data = (directory / sbom_name).read_bytes()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = {}
        mt = (
            "application/spdx+json"
            if isinstance(parsed, dict) and "spdxVersion" in parsed
            else "application/vnd.cyclonedx+json"
        )
        add(mt, data, sbom_name)
    config = _canon(doc)
    blobs[digest_of(config)] = config
    manifest = {
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": _desc(CONFIG_TYPE, config),
        "layers": layers,
        "annotations": {
            TITLE: str(meta.get("name", "")),
            "org.opencontainers.image.version": str(meta.get("version", "")),
        },
    }
    mbytes = _canon(manifest)
    d = digest_of(mbytes)
    blobs[d] = mbytes
    return Layout(blobs=blobs, manifest_digest=d, manifest=manifest)


def layout_tar(layout: Layout) -> bytes:
    """The layout as a tar (index.json, oci-layout, blobs/sha256/…)."""
    version = layout.manifest.get("annotations", {}).get("org.opencontainers.image.version", "latest")
    entries = [
        {
            "mediaType": IMAGE_MANIFEST,
            "digest": layout.manifest_digest,
            "size": len(layout.blobs[layout.manifest_digest]),
            "artifactType": ARTIFACT_TYPE,
            "annotations": {REF: version},
        }
    ]
    for sig in layout.signature_manifests:
        data = _canon(sig)
        layout.blobs[digest_of(data)] = data
        entries.append(
            {
                "mediaType": IMAGE_MANIFEST,
                "digest": digest_of(data),
                "size": len(data),
                "annotations": {
                    REF: layout.manifest_digest.replace(":", "-")
                    + (".sigstore" if sig.get("artifactType") == SIGSTORE_BUNDLE else ".sig")
                },
            }
        )
    files = {
        "oci-layout": _canon({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canon({"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": entries}),
    }
    for d, data in layout.blobs.items():
        files["blobs/sha256/" + d.split(":", 1)[1]] = data
    return _tar_bytes(files, gz=False)


# ---------------------------------------------------------------------- signing
def load_private_key(pem: bytes, password: bytes | None = None) -> Any:
    key = serialization.load_pem_private_key(pem, password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError("the key must be ECDSA P-256 or Ed25519")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name != "secp256r1":
        raise ValueError("ECDSA keys must be on P-256")
    return key


def load_public_key(pem: str | bytes) -> tuple[Any, str, str]:
    """(key, algorithm, fingerprint) of a PEM public key; ValueError for anything else."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"ECDSA keys must be on P-256, not {key.curve.name}")
        algorithm = "ecdsa-p256"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm = "ed25519"
    else:
        raise ValueError("only ECDSA P-256 and Ed25519 public keys are accepted")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, algorithm, "sha256:" + hashlib.sha256(der).hexdigest()


def simple_signing_payload(manifest_digest: str, reference: str) -> bytes:
    return _canon(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": COSIGN_TYPE,
            },
            "optional": None,
        }
    )


def sign(layout: Layout, private_key: Any, reference: str = "aionix.local/module") -> None:
    """Add a cosign-style signature manifest over the artifact's manifest digest."""
    payload = simple_signing_payload(layout.manifest_digest, reference)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        sig = private_key.sign(payload, ec.ECDSA(hashes.SHA256()))
    else:
        sig = private_key.sign(payload)
    layout.blobs[digest_of(payload)] = payload
    layout.blobs[digest_of(EMPTY_CONFIG)] = EMPTY_CONFIG
    layer = _desc(COSIGN_LAYER, payload)
    layer["annotations"] = {COSIGN_SIG: base64.b64encode(sig).decode()}
    layout.signature_manifests.append(
        {
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "config": _desc("application/vnd.oci.image.config.v1+json", EMPTY_CONFIG),
            "layers": [layer],
        }
    )


def _signature_layer(media_type: Any) -> bool:
    return media_type == COSIGN_LAYER or (isinstance(media_type, str) and media_type.startswith(SIGSTORE_PREFIX))


def sign_bundle(layout: Layout, private_key: Any, *, dsse: bool = False) -> None:
    """Add a Sigstore bundle (v0.3, key-based: no certificate, no transparency-log entry) as an
    OCI referrer of the artifact: a `messageSignature` over the manifest bytes, or with `dsse` an
    in-toto statement naming the manifest digest in a DSSE envelope."""
    manifest_bytes = layout.blobs[layout.manifest_digest]
    pub = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bundle: dict[str, Any] = {
        "mediaType": SIGSTORE_BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": "sha256:" + hashlib.sha256(pub).hexdigest()}, "tlogEntries": []},
    }

    def raw_sign(data: bytes) -> bytes:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        return private_key.sign(data)

    if dsse:
        statement = _canon(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "agent-package", "digest": {"sha256": layout.manifest_digest.split(":", 1)[1]}}],
                "predicateType": "https://aionix.dev/agent-package/v1",
                "predicate": {},
            }
        )
        ptype = "application/vnd.in-toto+json"
        bundle["dsseEnvelope"] = {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": ptype,
            "signatures": [{"sig": base64.b64encode(raw_sign(_pae(ptype, statement))).decode()}],
        }
    else:
        bundle["messageSignature"] = {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": base64.b64encode(hashlib.sha256(manifest_bytes).digest()).decode(),
            },
            "signature": base64.b64encode(raw_sign(manifest_bytes)).decode(),
        }
    data = _canon(bundle)
    layout.blobs[digest_of(data)] = data
    layout.blobs[digest_of(EMPTY_CONFIG)] = EMPTY_CONFIG
    layout.signature_manifests.append(
        {
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "artifactType": SIGSTORE_BUNDLE,
            "config": _desc(EMPTY_TYPE, EMPTY_CONFIG),
            "layers": [_desc(SIGSTORE_BUNDLE, data)],
            "subject": {"mediaType": IMAGE_MANIFEST, "digest": layout.manifest_digest, "size": len(manifest_bytes)},
        }
    )


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _bundle_signatures(layout: Layout, data: bytes) -> list[tuple[bytes, bytes]]:
    """Key-based Sigstore bundle signatures over this artifact (transparency-log entries and
    certificates are not checked: verification here is offline, against trusted keys)."""
    out: list[tuple[bytes, bytes]] = []
    try:
        bundle = json.loads(data)
        vm = bundle.get("verificationMaterial")
        if isinstance(vm, dict) and ("certificate" in vm or "x509CertificateChain" in vm):
            return []  # keyless: verified against trusted roots (`keyless_bundles`)
        manifest_bytes = layout.blobs[layout.manifest_digest]
        ms = bundle.get("messageSignature")
        if isinstance(ms, dict):
            md = ms.get("messageDigest") or {}
            if (
                md.get("algorithm") == "SHA2_256"
                and base64.b64decode(md.get("digest", "")) == hashlib.sha256(manifest_bytes).digest()
            ):
                out.append((manifest_bytes, base64.b64decode(ms["signature"], validate=True)))
        env = bundle.get("dsseEnvelope")
        if isinstance(env, dict):
            payload = base64.b64decode(env["payload"], validate=True)
            statement = json.loads(payload)
            hexd = layout.manifest_digest.split(":", 1)[1]
            if any((s.get("digest") or {}).get("sha256") == hexd for s in statement.get("subject") or []):
                pae = _pae(str(env["payloadType"]), payload)
                out += [(pae, base64.b64decode(s["sig"], validate=True)) for s in env.get("signatures") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    return out


def _referrer_bundles(layout: Layout) -> list[bytes]:
    """The Sigstore bundle blobs of referrers whose subject is this artifact."""
    out = []
    for doc in layout.signature_manifests:
        subject = (doc.get("subject") or {}).get("digest")
        for layer in doc.get("layers") or []:
            if not isinstance(layer, dict) or layer.get("mediaType") == COSIGN_LAYER:
                continue
            if not _signature_layer(layer.get("mediaType")):
                continue
            blob = layout.blobs.get(layer.get("digest", ""))
            if (
                blob is not None
                and digest_of(blob) == layer.get("digest")
                and subject in (None, layout.manifest_digest)
            ):
                out.append(blob)
    return out


def keyless_bundles(layout: Layout) -> list[dict[str, Any]]:
    """Keyless Sigstore bundles (a Fulcio certificate, a Rekor entry) attached to this artifact."""
    out = []
    for blob in _referrer_bundles(layout):
        try:
            bundle = json.loads(blob)
        except ValueError:
            continue
        vm = bundle.get("verificationMaterial") if isinstance(bundle, dict) else None
        if isinstance(vm, dict) and ("certificate" in vm or "x509CertificateChain" in vm):
            out.append(bundle)
    return out


def attach_bundle(layout: Layout, data: bytes) -> None:
    """Attach a Sigstore bundle made elsewhere (e.g. `cosign sign-blob --bundle` over the
    artifact's manifest blob) as an OCI referrer of the artifact."""
    try:
        bundle = json.loads(data)
    except ValueError:
        raise PackageError("bundle: not JSON", "bundle") from None
    media = bundle.get("mediaType") if isinstance(bundle, dict) else None
    if not (isinstance(media, str) and media.startswith(SIGSTORE_PREFIX)):
        raise PackageError(f"bundle: not a Sigstore bundle (mediaType {SIGSTORE_PREFIX}…)", "bundle")
    manifest_bytes = layout.blobs[layout.manifest_digest]
    layout.blobs[digest_of(data)] = data
    layout.blobs[digest_of(EMPTY_CONFIG)] = EMPTY_CONFIG
    layout.signature_manifests.append(
        {
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "artifactType": SIGSTORE_BUNDLE,
            "config": _desc(EMPTY_TYPE, EMPTY_CONFIG),
            "layers": [_desc(SIGSTORE_BUNDLE, data)],
            "subject": {"mediaType": IMAGE_MANIFEST, "digest": layout.manifest_digest, "size": len(manifest_bytes)},
        }
    )


def signatures(layout: Layout) -> list[tuple[bytes, bytes]]:
    """(payload, signature) pairs whose payload names this artifact's manifest digest: cosign
    simple-signing layers and Sigstore bundles."""
    out = []
    for doc in layout.signature_manifests:
        for layer in doc.get("layers") or []:
            if not isinstance(layer, dict) or not _signature_layer(layer.get("mediaType")):
                continue
            if layer.get("mediaType") != COSIGN_LAYER:
                blob = layout.blobs.get(layer.get("digest", ""))
                subject = (doc.get("subject") or {}).get("digest")
                if (
                    blob is not None
                    and digest_of(blob) == layer.get("digest")
                    and subject in (None, layout.manifest_digest)
                ):
                    out += _bundle_signatures(layout, blob)
                continue
            payload = layout.blobs.get(layer.get("digest", ""))
            sig_b64 = (layer.get("annotations") or {}).get(COSIGN_SIG)
            if payload is None or not sig_b64 or digest_of(payload) != layer.get("digest"):
                continue
            try:
                doc_payload = json.loads(payload)
                named = doc_payload["critical"]["image"]["docker-manifest-digest"]
                kind = doc_payload["critical"]["type"]
                sig = base64.b64decode(sig_b64, validate=True)
            except (ValueError, KeyError, TypeError):
                continue
            if named == layout.manifest_digest and kind == COSIGN_TYPE:
                out.append((payload, sig))
    return out


def verify_signature(payload: bytes, sig: bytes, key: Any) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(sig, payload)
    except InvalidSignature:
        return False
    return True


def write_key_pair(directory: Path, algorithm: str, name: str) -> tuple[Path, Path]:
    """A new key pair as `NAME.key` (PKCS#8 PEM, unencrypted, 0600) and `NAME.pub`."""
    key: Any = (
        ec.generate_private_key(ec.SECP256R1()) if algorithm == "ecdsa-p256" else ed25519.Ed25519PrivateKey.generate()
    )
    priv = directory / f"{name}.key"
    pub = directory / f"{name}.pub"
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return priv, pub
