"""PEM certificates as operators hand them over: a damaged one is one clear error."""

from __future__ import annotations

import base64
import textwrap

import pytest

from node.core import tlscert
from node.errors import ValidationError
from tests.helpers import tls_for


def _pem(der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode()


def test_a_pem_certificate_round_trips_to_der() -> None:
    der = tls_for("ct").cert_der
    assert tlscert.pem_to_der(tlscert.der_to_pem(der)) == der
    assert tlscert.pem_to_der(_pem(der)) == der


@pytest.mark.parametrize(
    "pem",
    [
        b"not a certificate",
        # its version INTEGER 2 (v3) made 3: cryptography raises InvalidVersion,
        # which is no ValueError
        _pem(tls_for("ct").cert_der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x03", 1)),
    ],
    ids=["garbage", "unknown X.509 version"],
)
def test_a_damaged_pem_certificate_is_one_clear_error(pem: bytes) -> None:
    with pytest.raises(ValidationError, match=r"^not a PEM X\.509 certificate$"):
        tlscert.pem_to_der(pem)
