"""Keyless Sigstore bundles verified offline against an admin-configured trusted root.

The Fulcio CA and the Rekor log are local stand-ins (sigstore_standin.py) for Sigstore's
public-good instance, which cannot be reached offline; the bundles and the trusted root are in
the real formats. A good bundle installs verified; a wrong identity, a wrong issuer, an
untrusted CA, a certificate expired at the Rekor integration time, a bad signed entry timestamp
and a tampered artifact each quarantine with their reason."""

from __future__ import annotations

import time

import modpkg as pkg
import pytest
from conftest import install, unique
from sigstore_standin import StandIn

from aionix.modules import oci

EMAIL = "release@example.com"
WORKFLOW = "https://github.com/example/modules/.github/workflows/release.yml@refs/heads/main"
ISSUER = "https://accounts.example.com"
ACTIONS = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def fulcio() -> StandIn:
    return StandIn()


def _package(tmp_path, name=None):
    name = name or unique("keyless")
    return oci.pack_dir(pkg.write_dir(tmp_path, pkg.manifest(name))), name


def _signed(tmp_path, fulcio, **kw) -> tuple[bytes, str]:
    layout, name = _package(tmp_path)
    oci.attach_bundle(layout, fulcio.bundle(layout.blobs[layout.manifest_digest], **kw))
    return oci.layout_tar(layout), name


def _reasons(mc, tar) -> str:
    out = install(mc, tar)
    assert out["state"] == "quarantined" and not out["runnable"], out
    assert all(r.startswith("signature: keyless") for r in out["reasons"]), out["reasons"]
    return "; ".join(out["reasons"])


def test_keyless_bundles_against_a_trusted_root(mc, fulcio, tmp_path):
    # before any root is trusted, a keyless bundle cannot verify: quarantined, saying why
    roots = mc.get("/api/v1/module-trust-roots").json()["items"]
    if not roots:
        out = install(mc, _signed(tmp_path / "none", fulcio)[0])
        assert out["state"] == "quarantined" and "no trusted roots are configured" in str(out["reasons"]), out
    r = mc.post(
        "/api/v1/module-trust-roots",
        json={
            "name": "sigstore-test",
            "trusted_root": fulcio.trusted_root(),
            "identities": [EMAIL, WORKFLOW],
            "issuers": [ISSUER, ACTIONS],
        },
    )
    assert r.status_code == 201, r.text
    root = r.json()
    assert root["identities"] == [EMAIL, WORKFLOW] and root["tlogs"][0]["key_id"]
    assert root["certificate_authorities"][0]["uri"] == "https://fulcio.sigstore.test"
    listed = {i["name"] for i in mc.get("/api/v1/module-trust-roots").json()["items"]}
    assert "sigstore-test" in listed
    audit = mc.get("/api/v1/audit", params={"action": "modules.trust.add_root"}).json()["items"]
    assert any(row.get("resource") == "sigstore-test" for row in audit)

    # a good bundle (email identity, both issuer extensions) installs verified and runs
    tar, name = _signed(tmp_path / "good", fulcio)
    out = install(mc, tar)
    assert out["state"] == "verified" and out["reasons"] == [], out
    assert out["signer"] == f"{EMAIL} ({ISSUER}) via sigstore-test", out
    r = mc.post(f"/api/v1/modules/{name}/run", json={"text": "signed without a key"})
    assert r.status_code == 200 and r.json()["result"] == {"text": "signed without a key"}, r.text
    # a CI workflow identity (URI SAN), only the older v1 issuer extension
    tar, _ = _signed(tmp_path / "uri", fulcio, identity=WORKFLOW, issuer=ACTIONS, v1_issuer_only=True)
    assert install(mc, tar)["state"] == "verified"

    # each failure quarantines with its reason
    tar, _ = _signed(tmp_path / "who", fulcio, identity="mallory@example.com")
    assert "identity mallory@example.com is not allowed" in _reasons(mc, tar)
    tar, _ = _signed(tmp_path / "iss", fulcio, issuer="https://evil.example.net")
    assert "OIDC issuer https://evil.example.net is not allowed" in _reasons(mc, tar)
    tar, _ = _signed(tmp_path / "ca", StandIn("rogue"))
    reasons = _reasons(mc, tar)
    # the rogue stand-in's Rekor key is not trusted either: its entry is refused first
    assert "not a Rekor log of the trusted root" in reasons, reasons
    other = StandIn("rogue-ca")
    other.rekor_key = fulcio.rekor_key  # a trusted log, but a CA nobody configured
    tar, _ = _signed(tmp_path / "ca2", other)
    assert "does not chain to a Fulcio CA of the trusted root" in _reasons(mc, tar)
    now = time.time()
    tar, _ = _signed(tmp_path / "old", fulcio, integrated_time=now, cert_window=(now - 1800, now - 1200))
    reasons = _reasons(mc, tar)
    assert "signing certificate was not valid at the Rekor integration time" in reasons and "expired" in reasons
    tar, _ = _signed(tmp_path / "set", fulcio, bad_set=True)
    assert "signed entry timestamp (inclusion promise) does not verify" in _reasons(mc, tar)
    # a bundle made for one artifact, attached to another (the manifest was changed after signing)
    layout, _ = _package(tmp_path / "orig")
    bundle = fulcio.bundle(layout.blobs[layout.manifest_digest])
    tampered, _ = _package(tmp_path / "tampered")
    oci.attach_bundle(tampered, bundle)
    assert "signs another digest than the artifact's" in _reasons(mc, oci.layout_tar(tampered))
    # an altered Rekor body (another artifact's digest in the log entry) with a re-signed promise is
    # caught too: the SET no longer verifies once the body changes
    import base64
    import json

    doc = json.loads(fulcio.bundle(layout.blobs[layout.manifest_digest]))
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    body = json.loads(base64.b64decode(entry["canonicalizedBody"]))
    body["spec"]["data"]["hash"]["value"] = "0" * 64
    entry["canonicalizedBody"] = base64.b64encode(json.dumps(body).encode()).decode()
    again, _ = _package(tmp_path / "body")
    again_bundle = json.loads(fulcio.bundle(again.blobs[again.manifest_digest]))
    again_bundle["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = entry["canonicalizedBody"]
    oci.attach_bundle(again, json.dumps(again_bundle).encode())
    assert "signed entry timestamp" in _reasons(mc, oci.layout_tar(again))


def test_trust_root_validation_and_removal(mc, fulcio):
    base = {"name": unique("root"), "identities": [EMAIL], "issuers": [ISSUER]}
    for bad, needle in (
        ({}, "certificateAuthorities"),
        ({"certificateAuthorities": "x"}, "certificateAuthorities"),
        ({**fulcio.trusted_root(), "tlogs": []}, "tlogs"),
        ({**fulcio.trusted_root(), "tlogs": [{"publicKey": {"rawBytes": "!!"}}]}, "tlogs[0]"),
        ({"certificateAuthorities": [{"certChain": {"certificates": [{"rawBytes": "aGVsbG8="}]}}]}, "certificates[0]"),
    ):
        r = mc.post("/api/v1/module-trust-roots", json={**base, "trusted_root": bad})
        assert r.status_code == 422 and "trusted_root" in r.text and needle in r.text, (bad, r.text)
    r = mc.post("/api/v1/module-trust-roots", json={**base, "trusted_root": fulcio.trusted_root(), "identities": []})
    assert r.status_code == 422 and "identities" in r.text
    r = mc.post("/api/v1/module-trust-roots", json={**base, "trusted_root": fulcio.trusted_root()})
    assert r.status_code == 201, r.text
    r = mc.post("/api/v1/module-trust-roots", json={**base, "trusted_root": fulcio.trusted_root()})
    assert r.status_code == 409
    r = mc.delete(f"/api/v1/module-trust-roots/{base['name']}")
    assert r.status_code == 200 and r.json()["deleted"] == base["name"]
    assert mc.delete(f"/api/v1/module-trust-roots/{base['name']}").status_code == 404
    audit = mc.get("/api/v1/audit", params={"action": "modules.trust.remove_root"}).json()["items"]
    assert any(row.get("resource") == base["name"] for row in audit)


def test_keyless_through_the_cli(mod_server, fulcio, tmp_path, monkeypatch, capsys):
    """`aio module trust add-root|roots|remove-root` and `aio module sign --print-manifest /
    --attach-bundle` (the bundle made elsewhere, as `cosign sign-blob` would, over the manifest blob)."""
    import json

    from aionix.cli.main import run

    monkeypatch.setenv("AIONIX_URL", mod_server.url)
    monkeypatch.setenv("AIONIX_API_KEY", mod_server.admin_key)

    def cli(*args: str):
        code = run(["-o", "json", *args])
        out = capsys.readouterr()
        return code, json.loads(out.out) if out.out.strip() else None, out.err

    path = tmp_path / "trusted_root.json"
    path.write_text(json.dumps(fulcio.trusted_root()))
    name = unique("cliroot")
    code, out, err = cli(
        "module", "trust", "add-root", str(path), "--name", name, "--identity", EMAIL, "--issuer", ISSUER
    )
    assert code == 0 and out["name"] == name and out["issuers"] == [ISSUER], err
    code, out, err = cli("module", "trust", "roots")
    assert code == 0 and name in {i["name"] for i in out["items"]}, err
    layout, _ = _package(tmp_path / "pkg")
    tar = tmp_path / "pkg.tar"
    tar.write_bytes(oci.layout_tar(layout))
    blob = tmp_path / "manifest.json"
    code, out, err = cli("module", "sign", str(tar), "--print-manifest", str(blob))
    assert code == 0 and out["digest"] == layout.manifest_digest, err
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(fulcio.bundle(blob.read_bytes()))
    code, out, err = cli("module", "sign", str(tar), "--attach-bundle", str(bundle))
    assert code == 0 and out["signatures"] == 1, err
    code, out, err = cli("module", "install", str(tar))
    assert code == 0 and out["state"] == "verified" and out["signer"].endswith(f"via {name}"), (out, err)
    code, out, err = cli("module", "trust", "remove-root", name)
    assert code == 0 and out["deleted"] == name, err
    code, _, err = cli("module", "sign", str(tar))
    assert code != 0 and "one of --key" in err
