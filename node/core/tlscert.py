"""Node TLS identities: self-signed certificates pinned by the roster.

Every node (and every key-only submitter) has an ECDSA P-256 TLS key and a
self-signed certificate made by ``ccnode init``. There is no certificate
authority: the roster lists each member's certificate, and a TLS peer is
accepted only if it presents a certificate whose key is pinned there. The
pin is the SHA-256 of the certificate's SubjectPublicKeyInfo (DER).

P-256 rather than Ed25519: gRPC's TLS stack (BoringSSL) does not offer
Ed25519 certificate signatures to its peers, so Ed25519 certificates fail
the handshake.

Every certificate carries the same DNS name, :data:`TLS_NAME`, which clients
use as the TLS target name: the address a peer listens on says nothing
about who it is, the pinned key does.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from node.errors import ValidationError

TLS_NAME = "ccnode.member"
CERT_DAYS = 3650
MAX_CERT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """A TLS private key (PEM, never in a repr) and its certificate (DER)."""

    key_pem: bytes = field(repr=False)
    cert_der: bytes
    spki: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "spki", spki_sha256(self.cert_der))
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        cert_key = load_cert(self.cert_der).public_key()
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != cert_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValidationError("TLS key and certificate do not match")

    @property
    def cert_pem(self) -> bytes:
        return der_to_pem(self.cert_der)


def new_tls_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def self_signed_cert(key: ec.EllipticCurvePrivateKey, member_id: str, now_ms: int) -> bytes:
    """A self-signed certificate (DER) for ``member_id``, valid ten years."""
    now = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def load_cert(der: bytes) -> x509.Certificate:
    if len(der) > MAX_CERT_BYTES:
        raise ValidationError(
            f"TLS certificate has {len(der)} bytes: expected at most {MAX_CERT_BYTES}"
        )
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        raise ValidationError("TLS certificate is not a DER X.509 certificate") from None


def spki_sha256(der: bytes) -> bytes:
    """SHA-256 of the certificate's SubjectPublicKeyInfo: the roster's TLS pin."""
    cert = load_cert(der)
    try:  # parsing is lazy: a damaged key surfaces only here
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValidationError("TLS certificate has no usable public key") from None
    return hashlib.sha256(spki).digest()


def pem_to_der(pem: bytes) -> bytes:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        raise ValidationError("not a PEM X.509 certificate") from None
    return cert.public_bytes(serialization.Encoding.DER)


def der_to_pem(der: bytes) -> bytes:
    return load_cert(der).public_bytes(serialization.Encoding.PEM)
