"""`aio module`: signed agent modules — pack, sign, install, verify, approve, quarantine, run,
SBOMs and the trusted signing keys."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import typer

from aionix.cli.client import EXIT_UNREACHABLE, EXIT_USAGE, CLIError, _error_line, status_exit_code
from aionix.cli.state import read_document, state

app = typer.Typer(help="Agent modules: pack, sign, install, verify, approve, run.", no_args_is_help=True)
trust_app = typer.Typer(help="Keys trusted to sign modules (admin).", no_args_is_help=True)
app.add_typer(trust_app, name="trust")
COLUMNS = ["name", "version", "runtime", "state", "signer", "intents"]
WIDE = [*COLUMNS, "digest", "reasons"]
BASE = "/api/v1/modules"


def _package_bytes(path: Path) -> bytes:
    """A package file (OCI layout tar or tar.gz) or an OCI image-layout directory, as a tar."""
    if path.is_file():
        return path.read_bytes()
    if path.is_dir():
        if not (path / "index.json").is_file() or not (path / "oci-layout").is_file():
            hint = " (a package source: run `aio module pack` first)" if (path / "manifest.yaml").is_file() else ""
            raise CLIError(f"{path}: not an OCI image layout (no index.json and oci-layout){hint}", EXIT_USAGE)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for p in sorted(path.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    tar.add(p, p.relative_to(path).as_posix())
        return buf.getvalue()
    raise CLIError(f"{path}: no such file or directory", EXIT_USAGE)


def _post_bytes(st: Any, path: str, data: bytes, content_type: str) -> Any:
    client = st.client
    try:
        response = client.http.post(path, content=data, headers={"Content-Type": content_type})
    except httpx.HTTPError as exc:
        raise CLIError(f"cannot reach the server at {client.url}: {exc}", EXIT_UNREACHABLE) from None
    if response.status_code >= 400:
        raise CLIError(_error_line(response), status_exit_code(response.status_code))
    return response.json()


@app.command("list")
def list_modules(
    ctx: typer.Context,
    state_: str = typer.Option(None, "--state", help="verified, approved or quarantined"),
    intent: str = typer.Option(None, "--intent", help="only modules that serve this intent"),
    limit: int = typer.Option(None, "--limit"),
    cursor: str = typer.Option(None, "--cursor"),
) -> None:
    """Installed modules (every version), their verification state and reasons."""
    st = state(ctx)
    st.emit(
        st.client.get(BASE, params={"state": state_, "intent": intent, "limit": limit, "cursor": cursor}),
        columns=COLUMNS,
        wide_columns=WIDE,
        id_field="name",
    )


@app.command("get")
def get(ctx: typer.Context, name: str, version: str = typer.Option(None, "--version")) -> None:
    """One module: manifest, permissions, state and reasons, SBOM, invocations, breaker."""
    st = state(ctx)
    st.emit(st.client.get(f"{BASE}/{name}", params={"version": version}))


@app.command("install")
def install(
    ctx: typer.Context,
    package: str = typer.Argument(
        ..., help="a package tar (OCI image layout), an OCI layout directory, or oci://HOST[:PORT]/REPO:TAG"
    ),
    insecure: bool = typer.Option(False, "--insecure", help="oci://: plain HTTP to the registry"),
) -> None:
    """Install a package (admin). It is verified (signature by a trusted key, SBOM, manifest,
    layer digests); one that fails a check is stored quarantined with the reasons. An oci://
    reference is pulled here with the ORAS client (with its cosign signature) and uploaded."""
    st = state(ctx)
    if package.startswith("oci://"):
        from aionix.modules import oci, registry

        try:
            layout = registry.pull(package[len("oci://") :], insecure=insecure)
        except registry.RegistryError as exc:
            raise CLIError(str(exc), EXIT_UNREACHABLE) from None
        data = oci.layout_tar(layout)
    else:
        data = _package_bytes(Path(package))
    st.emit(_post_bytes(st, BASE, data, "application/x-tar"))


@app.command("push")
def push(
    ctx: typer.Context,
    package: Path = typer.Argument(..., help="a package tar (from aio module pack)"),
    reference: str = typer.Argument(..., help="oci://HOST[:PORT]/REPO:TAG"),
    insecure: bool = typer.Option(False, "--insecure", help="plain HTTP to the registry"),
) -> None:
    """Push a package (and its signatures) to an OCI registry with the ORAS client."""
    from aionix.modules import oci, registry

    if not reference.startswith("oci://"):
        raise CLIError("the reference must start with oci://", EXIT_USAGE)
    try:
        layout = oci.read_layout(package.read_bytes(), 1 << 32)
        digest = registry.push(layout, reference[len("oci://") :], insecure=insecure)
    except (oci.PackageError, OSError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    except registry.RegistryError as exc:
        raise CLIError(str(exc), EXIT_UNREACHABLE) from None
    state(ctx).emit({"reference": reference, "digest": digest, "signatures": len(layout.signature_manifests)})


@app.command("pack")
def pack(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="package source: manifest.yaml, code, schemas, SBOM"),
    out: Path = typer.Option(None, "--out", help="the tar to write (default NAME-VERSION.tar beside the folder)"),
    key: Path = typer.Option(None, "--key", help="a private key (PEM) to sign it with (cosign-style)"),
) -> None:
    """Build an OCI image-layout tar from a package folder, optionally signed."""
    from aionix.modules import oci

    if not directory.is_dir():
        raise CLIError(f"{directory}: not a directory", EXIT_USAGE)
    try:
        layout = oci.pack_dir(directory)
        if key is not None:
            oci.sign(layout, oci.load_private_key(key.read_bytes()))
    except (oci.PackageError, ValueError, OSError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    ann = layout.manifest.get("annotations", {})
    target = (
        out
        or directory.parent
        / f"{ann.get('org.opencontainers.image.title')}-{ann.get('org.opencontainers.image.version')}.tar"
    )
    target.write_bytes(oci.layout_tar(layout))
    state(ctx).emit({"package": str(target), "digest": layout.manifest_digest, "signed": key is not None})


@app.command("sign")
def sign(
    ctx: typer.Context,
    package: Path = typer.Argument(..., help="a package tar"),
    key: Path = typer.Option(None, "--key", help="a private key (PEM, ECDSA P-256 or Ed25519)"),
    bundle: bool = typer.Option(
        False, "--bundle", help="a Sigstore bundle (v0.3, key-based) instead of a cosign signature"
    ),
    dsse: bool = typer.Option(False, "--dsse", help="--bundle: an in-toto statement in a DSSE envelope"),
    attach_bundle: Path = typer.Option(
        None,
        "--attach-bundle",
        help="instead of --key: attach a Sigstore bundle made elsewhere (keyless: `cosign sign-blob "
        "--new-bundle-format --bundle B.json` over the package's manifest blob, see --print-manifest)",
    ),
    print_manifest: Path = typer.Option(
        None, "--print-manifest", help="write the package's OCI manifest blob (what a bundle signs) to this file"
    ),
) -> None:
    """Add a signature over the package's manifest digest (rewrites the tar): cosign-style, a
    key-based Sigstore bundle, or an attached (e.g. keyless) Sigstore bundle, as an OCI referrer."""
    from aionix.modules import oci

    if sum(x is not None for x in (key, attach_bundle, print_manifest)) != 1:
        raise CLIError("give one of --key, --attach-bundle or --print-manifest", EXIT_USAGE)
    try:
        layout = oci.read_layout(package.read_bytes(), 1 << 32)
        if print_manifest is not None:
            print_manifest.write_bytes(layout.blobs[layout.manifest_digest])
            state(ctx).emit({"manifest": str(print_manifest), "digest": layout.manifest_digest})
            return
        if attach_bundle is not None:
            oci.attach_bundle(layout, attach_bundle.read_bytes())
        elif bundle:
            oci.sign_bundle(layout, oci.load_private_key(key.read_bytes()), dsse=dsse)
        else:
            oci.sign(layout, oci.load_private_key(key.read_bytes()))
    except (oci.PackageError, ValueError, OSError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    package.write_bytes(oci.layout_tar(layout))
    state(ctx).emit(
        {"package": str(package), "digest": layout.manifest_digest, "signatures": len(layout.signature_manifests)}
    )


@app.command("keygen")
def keygen(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="writes NAME.key (private, 0600) and NAME.pub"),
    algorithm: str = typer.Option("ecdsa-p256", "--algorithm", help="ecdsa-p256 or ed25519"),
    directory: Path = typer.Option(Path("."), "--dir"),
) -> None:
    """Make a signing key pair (cosign-compatible PEM)."""
    from aionix.modules import oci

    if algorithm not in ("ecdsa-p256", "ed25519"):
        raise CLIError("--algorithm must be ecdsa-p256 or ed25519", EXIT_USAGE)
    priv, pub = oci.write_key_pair(directory, algorithm, name)
    state(ctx).emit({"private_key": str(priv), "public_key": str(pub), "algorithm": algorithm})


@app.command("verify")
def verify(ctx: typer.Context, name: str, version: str = typer.Option(None, "--version")) -> None:
    """Hash the stored layers again (a mismatch quarantines the module)."""
    st = state(ctx)
    st.emit(st.client.post(f"{BASE}/{name}/verify", params={"version": version}))


@app.command("approve")
def approve(ctx: typer.Context, name: str, version: str = typer.Option(None, "--version")) -> None:
    """Approve a quarantined module after inspecting it (admin, audited): it becomes runnable."""
    st = state(ctx)
    st.emit(st.client.post(f"{BASE}/{name}/approve", params={"version": version}))


@app.command("quarantine")
def quarantine(
    ctx: typer.Context,
    name: str,
    version: str = typer.Option(None, "--version"),
    reason: str = typer.Option("quarantined by an admin", "--reason"),
) -> None:
    """Quarantine a module (admin, audited): it stops running."""
    st = state(ctx)
    st.emit(st.client.post(f"{BASE}/{name}/quarantine", {"version": version, "reason": reason}))


@app.command("remove")
def remove(ctx: typer.Context, name: str, version: str = typer.Option(None, "--version")) -> None:
    """Remove a module (every version, or --version; admin, audited)."""
    st = state(ctx)
    st.emit(st.client.delete(f"{BASE}/{name}", params={"version": version}))


@app.command("run")
def run(
    ctx: typer.Context,
    name: str,
    input: str = typer.Argument("{}", help="JSON/YAML input: inline, @file, a path, or - for stdin"),
    version: str = typer.Option(None, "--version"),
    entrypoint: str = typer.Option(None, "--entrypoint"),
) -> None:
    """Run a module with the input; prints its output (validated against its output schema)."""
    st = state(ctx)
    st.emit(
        st.client.post(
            f"{BASE}/{name}/run", read_document(input), params={"version": version, "entrypoint": entrypoint}
        )
    )


@app.command("sbom")
def sbom(ctx: typer.Context, name: str, version: str = typer.Option(None, "--version")) -> None:
    """The module's SBOM (CycloneDX or SPDX JSON) as installed."""
    st = state(ctx)
    st.emit(st.client.get(f"{BASE}/{name}/sbom", params={"version": version}))


@app.command("schema")
def schema(ctx: typer.Context) -> None:
    """The manifest's JSON Schema (apiVersion aionos/v1, kind AgentPackage)."""
    st = state(ctx)
    st.emit(st.client.get(f"{BASE}/schema"))


@app.command("validate")
def validate(ctx: typer.Context, manifest: Path = typer.Argument(..., help="a manifest.yaml")) -> None:
    """Check a manifest against the server's schema; errors name the field."""
    st = state(ctx)
    if not manifest.is_file():
        raise CLIError(f"{manifest}: no such file", EXIT_USAGE)
    st.emit(_post_bytes(st, f"{BASE}/validate", manifest.read_bytes(), "application/yaml"))


@trust_app.command("add")
def trust_add(
    ctx: typer.Context,
    key: Path = typer.Argument(..., help="a public key file (PEM: ECDSA P-256 or Ed25519)"),
    name: str = typer.Option(None, "--name", help="default: the file name without .pub"),
) -> None:
    """Trust a key for module signatures (admin, audited)."""
    st = state(ctx)
    if not key.is_file():
        raise CLIError(f"{key}: no such file", EXIT_USAGE)
    key_name = name or key.name.removesuffix(".pub").lower()
    st.emit(st.client.post("/api/v1/module-keys", {"name": key_name, "public_key": key.read_text()}))


@trust_app.command("add-root")
def trust_add_root(
    ctx: typer.Context,
    trusted_root: Path = typer.Argument(..., help="a Sigstore trusted_root.json (Fulcio CAs, Rekor log keys)"),
    identity: list[str] = typer.Option(
        ..., "--identity", help="a certificate identity (SAN email or URI) to accept; repeatable"
    ),
    issuer: list[str] = typer.Option(..., "--issuer", help="an OIDC issuer URL to accept; repeatable"),
    name: str = typer.Option(None, "--name", help="default: the file name without .json"),
) -> None:
    """Trust a Sigstore root for keyless module signatures by these identities and issuers
    (admin, audited); bundles are then verified offline against it."""
    import json

    st = state(ctx)
    if not trusted_root.is_file():
        raise CLIError(f"{trusted_root}: no such file", EXIT_USAGE)
    try:
        doc = json.loads(trusted_root.read_text())
    except ValueError as exc:
        raise CLIError(f"{trusted_root}: not JSON: {exc}", EXIT_USAGE) from None
    root_name = name or trusted_root.name.removesuffix(".json").lower().replace("_", "-")
    st.emit(
        st.client.post(
            "/api/v1/module-trust-roots",
            {"name": root_name, "trusted_root": doc, "identities": identity, "issuers": issuer},
        )
    )


@trust_app.command("roots")
def trust_roots(ctx: typer.Context) -> None:
    """The trusted Sigstore roots and the identities and issuers each accepts."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/module-trust-roots"),
        columns=["name", "identities", "issuers", "fingerprint", "created_at"],
        id_field="name",
    )


@trust_app.command("remove-root")
def trust_remove_root(ctx: typer.Context, name: str) -> None:
    """Stop trusting a Sigstore root (admin, audited)."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/module-trust-roots/{name}"))


@trust_app.command("list")
def trust_list(ctx: typer.Context) -> None:
    """The trusted keys and their fingerprints."""
    st = state(ctx)
    st.emit(
        st.client.get("/api/v1/module-keys"),
        columns=["name", "algorithm", "fingerprint", "created_at"],
        id_field="name",
    )


@trust_app.command("remove")
def trust_remove(ctx: typer.Context, name: str) -> None:
    """Stop trusting a key (admin, audited)."""
    st = state(ctx)
    st.emit(st.client.delete(f"/api/v1/module-keys/{name}"))
