"""Install from an OCI layout tar; the manifest schema; every verification failure quarantines
with its reason; approve/remove and their audit rows; trusted keys are admin-only."""

from __future__ import annotations

import json

import modpkg as pkg
from conftest import install, unique


def test_schema_and_manifest_errors_name_the_field(mc):
    schema = mc.get("/api/v1/modules/schema").json()
    assert schema["properties"]["apiVersion"]["const"] == "aionos/v1"
    assert {"metadata", "runtime", "entrypoints"} <= set(schema["required"])
    good = pkg.manifest("ok")
    r = mc.post("/api/v1/modules/validate", content=json.dumps(good))
    assert r.status_code == 200, r.text
    cases = [
        ({"apiVersion": "aionos/v2"}, "apiVersion"),
        ({"runtime": {"type": "docker"}}, "runtime.type"),
        ({"runtime": {"type": "wasm", "resources": {"memory": "lots"}}}, "runtime.resources.memory"),
        ({"permissions": {"network": ["bad host!"]}}, "permissions.network"),
        ({"permissions": {"filesystem": "read-write"}}, "permissions.filesystem"),
        ({"policies": {"timeout_ms": 0}}, "policies.timeout_ms"),
        ({"metadata": {"name": "Bad Name"}}, "metadata.name"),
        ({"surprise": 1}, "surprise"),
    ]
    for over, field in cases:
        r = mc.post("/api/v1/modules/validate", content=json.dumps(pkg.manifest("ok", **over)))
        assert r.status_code == 422, (over, r.text)
        assert r.json()["error"]["details"][0]["field"].startswith(field), (over, r.text)
    r = mc.post("/api/v1/modules/validate", content=b"{not yaml: [")
    assert r.status_code == 422 and "manifest" in r.text
    # no alias bombs, no stack exhaustion, no huge documents: 422, never a 500
    bomb = (
        b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b]\n"
    )
    for body in (bomb, b"[" * 100_000, b"a: " + b"x" * 300_000, b"\xff\xfe\x00bad"):
        r = mc.post("/api/v1/modules/validate", content=body)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "manifest", r.text[:200]


def test_install_signed_tarball_is_verified_and_sbom_shown(mc, trusted, tmp_path):
    name = unique("echo")
    tar, layout = pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)), trusted)
    out = install(mc, tar)
    assert out["state"] == "verified", out
    assert out["runnable"] and out["reasons"] == [] and out["signer"] == "test-ecdsa"
    assert out["digest"] == layout.manifest_digest
    assert out["trn"].endswith(f":module/{name}:1.0.0")
    sbom = mc.get(f"/api/v1/modules/{name}/sbom").json()
    assert sbom["format"] == "cyclonedx" and sbom["sbom"]["metadata"]["component"]["name"] == name
    listed = mc.get("/api/v1/modules").json()["items"]
    assert any(i["name"] == name and i["state"] == "verified" for i in listed)
    audit = mc.get("/api/v1/audit", params={"action": "modules.install"}).json()
    assert any(name in (row.get("resource") or "") for row in audit["items"])


def test_ed25519_signatures_verify(mc, tmp_path):
    key, pub = pkg.keypair("ed25519")
    r = mc.post("/api/v1/module-keys", json={"name": unique("ed"), "public_key": pub})
    assert r.status_code == 201 and r.json()["algorithm"] == "ed25519"
    name = unique("ed")
    out = install(mc, pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)), key)[0])
    assert out["state"] == "verified", out


def _quarantined(mc, tar) -> list[str]:
    out = install(mc, tar)
    assert out["state"] == "quarantined" and not out["runnable"], out
    return out["reasons"]


def test_every_failure_quarantines_with_its_reason(mc, trusted, tmp_path):
    # no signature
    d = pkg.write_dir(tmp_path / "a", pkg.manifest(unique("nosig")))
    assert any("not signed" in r for r in _quarantined(mc, pkg.build(d)[0]))
    # signed by a key nobody trusts
    other, _ = pkg.keypair("ecdsa")
    d = pkg.write_dir(tmp_path / "b", pkg.manifest(unique("wrongkey")))
    assert any("no signature verifies" in r for r in _quarantined(mc, pkg.build(d, other)[0]))
    # missing SBOM
    d = pkg.write_dir(tmp_path / "c", pkg.manifest(unique("nosbom")), sbom=None)
    assert any(r.startswith("sbom: missing") for r in _quarantined(mc, pkg.build(d, trusted)[0]))
    # malformed SBOM, and one that does not name the package
    d = pkg.write_dir(tmp_path / "d", pkg.manifest(unique("badsbom")), sbom="{oops")
    assert any("sbom: malformed" in r for r in _quarantined(mc, pkg.build(d, trusted)[0]))
    d = pkg.write_dir(
        tmp_path / "e",
        pkg.manifest(unique("othersbom")),
        sbom={"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": {"component": {"name": "x"}}},
    )
    assert any("does not name the package" in r for r in _quarantined(mc, pkg.build(d, trusted)[0]))
    # a manifest error (still nameable): quarantined with the field
    d = pkg.write_dir(tmp_path / "f", pkg.manifest(unique("badman"), policies={"timeout_ms": -1}))
    assert any(r.startswith("manifest: policies.timeout_ms") for r in _quarantined(mc, pkg.build(d, trusted)[0]))
    # a layer altered after signing (its bytes no longer match the manifest's digest)
    d = pkg.write_dir(tmp_path / "g", pkg.manifest(unique("tamper")))
    _, layout = pkg.build(d, trusted)
    code = next(x for x in layout.layers() if x["mediaType"].endswith("tar+gzip"))
    layout.blobs[code["digest"]] = layout.blobs[code["digest"]] + b"evil"
    from aionix.modules import oci

    assert any(r.startswith("tampered layer") for r in _quarantined(mc, oci.layout_tar(layout)))
    # a package that cannot be named at all is refused, naming the field
    d = pkg.write_dir(tmp_path / "h", pkg.manifest("x", metadata={"name": "NO NAME"}))
    r = mc.post("/api/v1/modules", content=pkg.build(d, trusted)[0], headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "metadata.name"
    r = mc.post("/api/v1/modules", content=b"not a tar", headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 422 and "package" in r.text


def test_quarantined_never_runs_until_approved_then_remove(mc, mod_server, trusted, tmp_path):
    name = unique("appr")
    out = install(mc, pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)))[0])  # unsigned
    assert out["state"] == "quarantined"
    r = mc.post(f"/api/v1/modules/{name}/run", json={"text": "hi"})
    assert r.status_code == 409 and r.json()["error"]["error"] == "Module.Quarantined"
    # operators can neither approve nor install
    with mod_server.client() as admin:
        op = admin.post("/api/v1/keys", json={"name": unique("op"), "role": "operator"}).json()["key"]
    with mod_server.client(op) as opc:
        assert opc.post(f"/api/v1/modules/{name}/approve").status_code == 403
        assert (
            opc.post("/api/v1/modules", content=b"x", headers={"Content-Type": "application/x-tar"}).status_code == 403
        )
        assert opc.post("/api/v1/module-keys", json={"name": "k", "public_key": "x" * 40}).status_code == 403
    r = mc.post(f"/api/v1/modules/{name}/approve")
    assert r.status_code == 200 and r.json()["state"] == "approved" and r.json()["approved_by"]
    r = mc.post(f"/api/v1/modules/{name}/run", json={"text": "hi"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"text": "hi"}
    r = mc.post(f"/api/v1/modules/{name}/quarantine", json={"reason": "incident 42"})
    assert r.json()["state"] == "quarantined" and "admin: incident 42" in r.json()["reasons"]
    assert mc.delete(f"/api/v1/modules/{name}").status_code == 200
    assert mc.get(f"/api/v1/modules/{name}").status_code == 404
    actions = {row["action"] for row in mc.get("/api/v1/audit", params={"limit": 500}).json()["items"]}
    assert {"modules.approve", "modules.quarantine", "modules.remove", "modules.trust.add"} <= actions


def test_tampered_blob_after_install_is_quarantined_at_load(mc, mod_server, trusted, tmp_path):
    name = unique("late")
    tar, layout = pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)), trusted)
    assert install(mc, tar)["state"] == "verified"
    code = next(x for x in layout.layers() if x["mediaType"].endswith("tar+gzip"))
    blob = mod_server.root / "data" / "modules" / "blobs" / code["digest"].split(":")[1]
    if not blob.exists():
        blob = next(mod_server.root.rglob(code["digest"].split(":")[1]))
    blob.write_bytes(blob.read_bytes() + b"x")
    r = mc.post(f"/api/v1/modules/{name}/run", json={"text": "hi"})
    assert r.status_code == 409 and "tampered after install" in r.text
    got = mc.get(f"/api/v1/modules/{name}").json()
    assert got["state"] == "quarantined" and any("tampered after install" in x for x in got["reasons"])
    assert mc.post(f"/api/v1/modules/{name}/approve").status_code == 409
    rows = mc.get("/api/v1/audit", params={"action": "modules.quarantine", "limit": 500}).json()["items"]
    assert any(name in (row.get("resource") or "") and "integrity check" in str(row.get("details")) for row in rows)


def test_multipart_upload_and_size_limit(mc, trusted, tmp_path):
    name = unique("multi")
    tar, _ = pkg.build(pkg.write_dir(tmp_path, pkg.manifest(name)), trusted)
    r = mc.post("/api/v1/modules", files={"package": (f"{name}.tar", tar, "application/x-tar")})
    assert r.status_code == 201 and r.json()["state"] == "verified", r.text
    r = mc.post("/api/v1/modules", files={"other": ("x.tar", tar, "application/x-tar")})
    assert r.status_code == 422 and "package" in r.text
    # bigger than [limits] max_body_bytes (1 MiB) is fine up to [modules] max_package_mb ...
    big = pkg.write_dir(
        tmp_path / "big", pkg.manifest(unique("big")), code={"module.wat": pkg.ECHO_WAT, "data.txt": "x" * (3 << 20)}
    )
    r = mc.post("/api/v1/modules", content=pkg.build(big, trusted)[0], headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 201, r.text[:300]
    # ... and beyond it is 413
    r = mc.post("/api/v1/modules", content=b"\0" * (65 << 20), headers={"Content-Type": "application/x-tar"})
    assert r.status_code == 413


def test_sigstore_bundles_verify_offline(mc, trusted, tmp_path):
    from aionix.modules import oci

    for dsse in (False, True):
        name = unique("bundle")
        layout = oci.pack_dir(pkg.write_dir(tmp_path / str(dsse), pkg.manifest(name)))
        oci.sign_bundle(layout, trusted, dsse=dsse)
        out = install(mc, oci.layout_tar(layout))
        assert out["state"] == "verified" and out["signer"] == "test-ecdsa", out
    # a bundle by an untrusted key, and one whose digest names another manifest
    other, _ = pkg.keypair("ecdsa")
    layout = oci.pack_dir(pkg.write_dir(tmp_path / "x", pkg.manifest(unique("bundle"))))
    oci.sign_bundle(layout, other)
    assert any("no signature verifies" in r for r in _quarantined(mc, oci.layout_tar(layout)))
    layout = oci.pack_dir(pkg.write_dir(tmp_path / "y", pkg.manifest(unique("bundle"))))
    decoy = oci.pack_dir(pkg.write_dir(tmp_path / "z", pkg.manifest(unique("decoy"))))
    oci.sign_bundle(decoy, trusted)
    layout.blobs.update({d: b for d, b in decoy.blobs.items() if d != decoy.manifest_digest})
    layout.signature_manifests = decoy.signature_manifests
    assert any("not signed" in r for r in _quarantined(mc, oci.layout_tar(layout)))
