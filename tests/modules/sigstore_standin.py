"""A local stand-in for Sigstore's public-good instance (Fulcio CA and Rekor log), which tests
cannot reach offline: a CA (root + intermediate) that issues short-lived Fulcio-style leaf
certificates (SAN identity, OIDC issuer extensions, codeSigning), a Rekor log key that signs
entry timestamps, and real-format keyless bundles (Sigstore bundle v0.3 JSON,
`messageSignature` + a hashedrekord `tlogEntries` item with its inclusion promise) plus the
matching `trusted_root.json`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ca_cert(subject: str, key: Any, issuer_cert: x509.Certificate | None, issuer_key: Any) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    now = time.time()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - 86400 * 365))
        .not_valid_after(_utc(now + 86400 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer_cert is None else 0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(issuer_key, hashes.SHA384())
    )


class StandIn:
    """A Fulcio CA and a Rekor log, local and throwaway."""

    def __init__(self, label: str = "fulcio") -> None:
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _ca_cert(f"{label} root", self.root_key, None, self.root_key)
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        self.inter = _ca_cert(f"{label} intermediate", self.inter_key, self.root, self.root_key)
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.index = 1000

    def trusted_root(self) -> dict[str, Any]:
        """The `trusted_root.json` of this stand-in (the format of Sigstore's TUF-distributed one)."""

        def log(key: Any, url: str) -> dict[str, Any]:
            der = _spki(key.public_key())
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(der),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2021-01-12T11:53:27.000Z"},
                },
                "logId": {"keyId": _b64(hashlib.sha256(der).digest())},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.rekor_key, "https://rekor.sigstore.test")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigstore.test", "commonName": "sigstore"},
                    "uri": "https://fulcio.sigstore.test",
                    "certChain": {
                        "certificates": [{"rawBytes": _b64(_der(self.inter))}, {"rawBytes": _b64(_der(self.root))}]
                    },
                    "validFor": {"start": "2022-04-13T20:06:15.000Z"},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ctfe.sigstore.test/test")],
            "timestampAuthorities": [],
        }

    def leaf(
        self, identity: str, issuer: str, key: Any, not_before: float, not_after: float, *, v1_issuer_only: bool = False
    ) -> x509.Certificate:
        """A Fulcio-style leaf: empty subject, the identity as a critical SAN, the OIDC issuer."""
        san = x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
        raw = issuer.encode()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.inter.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(not_before))
            .not_valid_after(_utc(not_after))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OID_ISSUER_V1, raw), critical=False)
        )
        if not v1_issuer_only:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V2, b"\x0c" + bytes([len(raw)]) + raw), critical=False
            )
        return builder.sign(self.inter_key, hashes.SHA384())

    def bundle(
        self,
        artifact: bytes,
        identity: str = "release@example.com",
        issuer: str = "https://accounts.example.com",
        *,
        integrated_time: float | None = None,
        cert_window: tuple[float, float] | None = None,
        v1_issuer_only: bool = False,
        bad_set: bool = False,
    ) -> bytes:
        """A keyless bundle over `artifact`: an ephemeral key, its leaf (10 minutes, like Fulcio's),
        the signature over the artifact's SHA-256 and a Rekor entry with its signed entry timestamp."""
        now = time.time() if integrated_time is None else integrated_time
        nb, na = cert_window or (now - 60, now + 540)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.leaf(identity, issuer, key, nb, na, v1_issuer_only=v1_issuer_only)
        digest = hashlib.sha256(artifact).digest()
        sig = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                "signature": {
                    "content": _b64(sig),
                    "publicKey": {"content": _b64(cert.public_bytes(serialization.Encoding.PEM))},
                },
            },
        }
        canonical = _b64(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        key_id = hashlib.sha256(_spki(self.rekor_key.public_key())).digest()
        self.index += 1
        integrated = int(now)
        promise = json.dumps(
            {"body": canonical, "integratedTime": integrated, "logID": key_id.hex(), "logIndex": self.index},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        set_sig = self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256()))
        if bad_set:
            set_sig = self.ct_key.sign(promise, ec.ECDSA(hashes.SHA256()))  # signed by another key
        doc = {
            "mediaType": BUNDLE_V03,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(_der(cert))},
                "tlogEntries": [
                    {
                        "logIndex": str(self.index),
                        "logId": {"keyId": _b64(key_id)},
                        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                        "integratedTime": str(integrated),
                        "inclusionPromise": {"signedEntryTimestamp": _b64(set_sig)},
                        "canonicalizedBody": canonical,
                    }
                ],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(digest)},
                "signature": _b64(sig),
            },
        }
        return json.dumps(doc).encode()
