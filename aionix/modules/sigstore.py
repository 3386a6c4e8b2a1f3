"""Keyless Sigstore bundles, verified offline against an admin-configured trusted root.

A keyless bundle (v0.3 JSON; v0.1/v0.2 with `x509CertificateChain` too) carries a short-lived
Fulcio leaf certificate naming the signer's identity (SAN email or URI) and OIDC issuer
(extension 1.3.6.1.4.1.57264.1.8, or the older .1.1), a `messageSignature` over the artifact
(the module's OCI manifest) and a Rekor transparency-log entry with its signed entry timestamp
(the inclusion promise). Nothing is fetched: the Fulcio CA certificates and the Rekor public
keys come from a Sigstore `trusted_root.json` the admin stored, with the identities and issuers
they allow.

Checked, in order (the first failure is the reason): the message digest is the artifact's; a
transparency-log entry is from a trusted log, its signed entry timestamp verifies with that
log's key, and its body (hashedrekord) names the artifact digest, this signature and this
certificate; the certificate chains to a trusted Fulcio CA and every certificate of the chain
was valid at the log's integration time; the signature verifies with the certificate's key; the
identity and the issuer are allowed. Not checked: the certificate's embedded SCTs (CT log
inclusion) and inclusion proofs against a checkpoint (the signed entry timestamp is the
offline proof)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

TRUSTED_ROOT_TYPE = "application/vnd.dev.sigstore.trustedroot+json"
OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


class VerifyError(Exception):
    """A keyless bundle that does not verify; the message is the quarantine reason."""


@dataclass
class Authority:
    """A Fulcio CA: its chain (intermediates first, the root last) and when it was valid."""

    uri: str
    chain: list[x509.Certificate]
    start: float | None
    end: float | None


@dataclass
class Log:
    """A Rekor (or CT) log: its public key and when it was valid."""

    base_url: str
    key_id: bytes
    key: Any
    start: float | None
    end: float | None


@dataclass
class TrustedRoot:
    authorities: list[Authority] = field(default_factory=list)
    tlogs: list[Log] = field(default_factory=list)
    ctlogs: list[Log] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "certificate_authorities": [
                {
                    "uri": a.uri,
                    "root": a.chain[-1].subject.rfc4514_string(),
                    "root_sha256": a.chain[-1].fingerprint(hashes.SHA256()).hex(),
                    "certificates": len(a.chain),
                    "valid_from": a.start,
                    "valid_until": a.end,
                }
                for a in self.authorities
            ],
            "tlogs": [{"base_url": t.base_url, "key_id": t.key_id.hex()} for t in self.tlogs],
            "ctlogs": [{"base_url": t.base_url, "key_id": t.key_id.hex()} for t in self.ctlogs],
        }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what}: base64 text expected")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: not base64") from None


def _time(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what}: an RFC 3339 time expected")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _valid_for(doc: dict[str, Any], what: str) -> tuple[float | None, float | None]:
    vf = doc.get("validFor") or {}
    if not isinstance(vf, dict):
        raise ValueError(f"{what}.validFor: an object expected")
    return _time(vf.get("start"), f"{what}.validFor.start"), _time(vf.get("end"), f"{what}.validFor.end")


def _logs(items: Any, what: str) -> list[Log]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"{what}: a list expected")
    out = []
    for i, item in enumerate(items):
        where = f"{what}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("publicKey"), dict):
            raise ValueError(f"{where}: an object with publicKey expected")
        der = _b64(item["publicKey"].get("rawBytes"), f"{where}.publicKey.rawBytes")
        try:
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError(f"{where}.publicKey.rawBytes: not a DER public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
            raise ValueError(f"{where}.publicKey: only ECDSA, Ed25519 and RSA log keys are supported")
        log_id = item.get("logId") or {}
        key_id = (
            _b64(log_id.get("keyId"), f"{where}.logId.keyId")
            if isinstance(log_id, dict) and log_id.get("keyId") is not None
            else hashlib.sha256(der).digest()
        )
        start, end = _valid_for(item["publicKey"], f"{where}.publicKey")
        base_url = item.get("baseUrl", "")
        out.append(Log(str(base_url)[:500], key_id, key, start, end))
    return out


def parse_trusted_root(doc: Any) -> TrustedRoot:
    """A Sigstore `trusted_root.json` (mediaType application/vnd.dev.sigstore.trustedroot+json);
    ValueError naming the part that is wrong. At least one Fulcio CA and one Rekor log."""
    try:
        return _parse_trusted_root(doc)
    except ValueError:
        raise
    except Exception as exc:  # anything odd in an admin's upload is a 4xx, never a 500
        raise ValueError(f"not a Sigstore trusted root: {type(exc).__name__}") from None


def _parse_trusted_root(doc: Any) -> TrustedRoot:
    if not isinstance(doc, dict):
        raise ValueError("a JSON object expected")
    media = doc.get("mediaType")
    if media is not None and not (isinstance(media, str) and media.startswith(TRUSTED_ROOT_TYPE)):
        raise ValueError(f"mediaType: {TRUSTED_ROOT_TYPE};version=0.1 expected")
    root = TrustedRoot()
    cas = doc.get("certificateAuthorities")
    if not isinstance(cas, list) or not cas:
        raise ValueError("certificateAuthorities: at least one Fulcio CA is required")
    for i, ca in enumerate(cas):
        where = f"certificateAuthorities[{i}]"
        certs = ((ca.get("certChain") or {}).get("certificates") if isinstance(ca, dict) else None) or []
        if not isinstance(certs, list) or not certs:
            raise ValueError(f"{where}.certChain.certificates: at least one certificate is required")
        chain = []
        for j, c in enumerate(certs):
            raw = _b64(c.get("rawBytes") if isinstance(c, dict) else None, f"{where}.certChain.certificates[{j}]")
            try:
                chain.append(x509.load_der_x509_certificate(raw))
            except ValueError:
                raise ValueError(f"{where}.certChain.certificates[{j}]: not a DER certificate") from None
        start, end = _valid_for(ca, where)
        root.authorities.append(Authority(str(ca.get("uri", ""))[:500], chain, start, end))
    root.tlogs = _logs(doc.get("tlogs"), "tlogs")
    if not root.tlogs:
        raise ValueError("tlogs: at least one Rekor log key is required")
    try:  # informational here (SCTs are not checked): a key type this parser lacks is no reason to refuse
        root.ctlogs = _logs(doc.get("ctlogs"), "ctlogs")
    except ValueError:
        root.ctlogs = []
    return root


# ---------------------------------------------------------------------- bundles
def is_keyless(bundle: Any) -> bool:
    vm = bundle.get("verificationMaterial") if isinstance(bundle, dict) else None
    return isinstance(vm, dict) and ("certificate" in vm or "x509CertificateChain" in vm)


def _leaf(vm: dict[str, Any]) -> x509.Certificate:
    cert = vm.get("certificate")
    if cert is None:
        certs = (vm.get("x509CertificateChain") or {}).get("certificates") or []
        cert = certs[0] if certs else None
    if not isinstance(cert, dict):
        raise VerifyError("the bundle has no certificate")
    try:
        return x509.load_der_x509_certificate(_b64(cert.get("rawBytes"), "certificate"))
    except ValueError:
        raise VerifyError("the bundle's certificate is not a DER certificate") from None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _verify(key: Any, sig: bytes, data: bytes, *, prehashed: bool = False) -> bool:
    algo: Any = Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, data, ec.ECDSA(algo))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), algo)
        elif isinstance(key, ed25519.Ed25519PublicKey) and not prehashed:
            key.verify(sig, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _chain(leaf: x509.Certificate, root: TrustedRoot, at: float) -> Authority:
    """The trusted CA the leaf chains to, every certificate valid at `at`; VerifyError otherwise."""
    for ca in root.authorities:
        path = [leaf, *ca.chain]
        if not all(_issued_by(path[i], path[i + 1]) for i in range(len(path) - 1)):
            continue
        if not all(_is_ca(c) for c in ca.chain):
            continue
        if (ca.start is not None and at < ca.start) or (ca.end is not None and at > ca.end):
            raise VerifyError(
                f"the Fulcio CA {ca.uri or ca.chain[-1].subject.rfc4514_string()} was not valid at the "
                f"Rekor integration time {_when(at)}"
            )
        for c in path:
            nb, na = c.not_valid_before_utc.timestamp(), c.not_valid_after_utc.timestamp()
            if not nb <= at <= na:
                who = "the signing certificate" if c is leaf else f"the CA certificate {c.subject.rfc4514_string()}"
                raise VerifyError(
                    f"{who} was not valid at the Rekor integration time {_when(at)} "
                    f"(valid {_when(nb)} to {_when(na)}): expired or not yet valid"
                )
        return ca
    raise VerifyError(
        f"the certificate (issuer {leaf.issuer.rfc4514_string()}) does not chain to a Fulcio CA of the trusted root"
    )


def _der_utf8(raw: bytes) -> str:
    """A DER UTF8String (the v2 issuer extension's value)."""
    if len(raw) < 2 or raw[0] != 0x0C:
        raise ValueError("not a UTF8String")
    n, pos = raw[1], 2
    if n & 0x80:
        width = n & 0x7F
        n, pos = int.from_bytes(raw[2 : 2 + width], "big"), 2 + width
    return raw[pos : pos + n].decode()


def identities(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.RFC822Name), *san.get_values_for_type(x509.UniformResourceIdentifier)]


def issuer(cert: x509.Certificate) -> str | None:
    for oid, v2 in ((OID_ISSUER_V2, True), (OID_ISSUER_V1, False)):
        try:
            value = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = getattr(value, "value", b"")
        try:
            return _der_utf8(raw) if v2 else raw.decode()
        except (ValueError, UnicodeDecodeError):
            continue
    return None


def _set_payload(entry: dict[str, Any], key_id: bytes, integrated: int, index: int) -> bytes:
    """What Rekor signs as the signed entry timestamp (RFC 8785 canonical JSON)."""
    doc = {"body": entry["canonicalizedBody"], "integratedTime": integrated, "logID": key_id.hex(), "logIndex": index}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _entry(entry: Any, root: TrustedRoot, digest: bytes, sig: bytes, leaf_der: bytes) -> tuple[int, int, str]:
    """(integrated time, log index, log url) of a trusted, matching tlog entry; VerifyError otherwise."""
    if not isinstance(entry, dict):
        raise VerifyError("a transparency-log entry is not an object")
    kind = (entry.get("kindVersion") or {}).get("kind")
    if kind != "hashedrekord":
        raise VerifyError(f"the transparency-log entry is a {kind!r} entry (hashedrekord is verified)")
    try:
        key_id = _b64((entry.get("logId") or {}).get("keyId"), "logId.keyId")
        integrated = int(entry["integratedTime"])
        index = int(entry["logIndex"])
        set_sig = _b64((entry.get("inclusionPromise") or {}).get("signedEntryTimestamp"), "signedEntryTimestamp")
        body = json.loads(_b64(entry.get("canonicalizedBody"), "canonicalizedBody"))
    except (ValueError, KeyError, TypeError) as exc:
        raise VerifyError(f"the transparency-log entry is malformed or has no inclusion promise ({exc})") from None
    log = next((t for t in root.tlogs if t.key_id == key_id), None)
    if log is None:
        raise VerifyError(
            f"the transparency-log entry is from log {key_id.hex()[:16]}…, not a Rekor log of the trusted root"
        )
    if (log.start is not None and integrated < log.start) or (log.end is not None and integrated > log.end):
        raise VerifyError(f"the Rekor log key was not valid at the entry's integration time {_when(integrated)}")
    if not _verify(log.key, set_sig, _set_payload(entry, key_id, integrated, index)):
        raise VerifyError(
            "the Rekor signed entry timestamp (inclusion promise) does not verify with the trusted log key"
        )
    try:
        spec = body["spec"]
        h = spec["data"]["hash"]
        body_sig = base64.b64decode(spec["signature"]["content"])
        body_cert = spec["signature"]["publicKey"]["content"]
        cert_der = x509.load_pem_x509_certificate(base64.b64decode(body_cert)).public_bytes(serialization.Encoding.DER)
    except (ValueError, KeyError, TypeError):
        raise VerifyError("the transparency-log entry's body is not a hashedrekord with a certificate") from None
    if body.get("kind") != "hashedrekord" or h.get("algorithm") != "sha256" or h.get("value") != digest.hex():
        raise VerifyError(f"the transparency-log entry records another artifact (sha256 {str(h.get('value'))[:16]}…)")
    if body_sig != sig:
        raise VerifyError("the transparency-log entry records another signature")
    if cert_der != leaf_der:
        raise VerifyError("the transparency-log entry records another certificate")
    return integrated, index, log.base_url


def verify_keyless(
    bundle: Any, artifact: bytes, root: TrustedRoot, allowed_identities: list[str], allowed_issuers: list[str]
) -> dict[str, Any]:
    """Verify a keyless bundle over `artifact`; the signer's facts, or VerifyError with the reason."""
    if not is_keyless(bundle):
        raise VerifyError("not a keyless bundle (no certificate)")
    leaf = _leaf(bundle["verificationMaterial"])
    ms = bundle.get("messageSignature")
    if not isinstance(ms, dict):
        raise VerifyError("the bundle has no messageSignature (DSSE keyless bundles are not verified)")
    digest = hashlib.sha256(artifact).digest()
    md = ms.get("messageDigest") or {}
    try:
        signed_digest = _b64(md.get("digest"), "messageDigest")
        sig = _b64(ms.get("signature"), "signature")
    except ValueError as exc:
        raise VerifyError(f"the bundle's messageSignature is malformed: {exc}") from None
    if md.get("algorithm") != "SHA2_256" or signed_digest != digest:
        raise VerifyError(
            "the bundle signs another digest than the artifact's (a tampered artifact, or another artifact's bundle)"
        )
    entries = (bundle["verificationMaterial"].get("tlogEntries")) or []
    if not isinstance(entries, list) or not entries:
        raise VerifyError("the bundle has no transparency-log entry (a keyless signature needs its Rekor entry)")
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    problems = []
    found = None
    for entry in entries[:8]:
        try:
            found = _entry(entry, root, digest, sig, leaf_der)
            break
        except VerifyError as exc:
            problems.append(str(exc))
    if found is None:
        raise VerifyError(problems[0])
    integrated, index, log_url = found
    ca = _chain(leaf, root, integrated)
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        code_signing = ExtendedKeyUsageOID.CODE_SIGNING in eku
    except x509.ExtensionNotFound:
        code_signing = False
    if not code_signing:
        raise VerifyError("the signing certificate is not for code signing (no codeSigning extended key usage)")
    if not _verify(leaf.public_key(), sig, digest, prehashed=True) and not _verify(leaf.public_key(), sig, artifact):
        raise VerifyError("the signature does not verify with the certificate's key over the artifact digest")
    names = identities(leaf)
    who = next((n for n in names if n in allowed_identities), None)
    if who is None:
        raise VerifyError(
            f"the certificate's identity {', '.join(names) or '(none)'} is not allowed "
            f"(allowed: {', '.join(allowed_identities)})"
        )
    iss = issuer(leaf)
    if iss is None:
        raise VerifyError("the certificate names no OIDC issuer (extension 1.3.6.1.4.1.57264.1.8 or .1.1)")
    if iss not in allowed_issuers:
        raise VerifyError(f"the certificate's OIDC issuer {iss} is not allowed (allowed: {', '.join(allowed_issuers)})")
    return {
        "identity": who,
        "issuer": iss,
        "integrated_time": integrated,
        "log_index": index,
        "log": log_url,
        "ca": ca.uri,
    }
