"""The transport's credentials of a Flower deployment: a certificate authority made for the run,
the SuperLink's TLS certificate signed by it, and each SuperNode's authentication key pair (the
public half registered with the SuperLink, which then accepts no other node).

Private keys are written 0600, never overwritten; certificates and public keys are public."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from seccl.files import atomic_write_bytes, write_new_private

# What the certificates are good for: one run (a longer deployment makes its own).
VALIDITY = datetime.timedelta(days=30)
# Flower's node authentication takes a NIST elliptic curve key in OpenSSH format; P-384 is the
# curve its documentation uses (`ssh-keygen -t ecdsa -b 384`).
NODE_CURVE = ec.SECP384R1


@dataclass(frozen=True)
class ServerCredentials:
    """The files the SuperLink is started with (``--ssl-ca-certfile``, ``--ssl-certfile``,
    ``--ssl-keyfile``); every client verifies the server against ``ca_certificate``
    (``--root-certificates``)."""

    ca_certificate: Path
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's authentication key pair: ``private_key`` (``--auth-supernode-private-key``,
    stays on the participant's machine) and ``public_key`` (given to the SuperLink's operator,
    who registers it with ``flwr supernode register``)."""

    private_key: Path
    public_key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecCL deployment"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_server_credentials(
    directory: Path, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> ServerCredentials:
    """A self-signed CA and a SuperLink server certificate for ``hosts`` (IP addresses or DNS
    names; the names clients dial) signed by it, under ``directory``: ``ca.crt``, ``ca.key``
    (0600), ``server.crt``, ``server.key`` (0600). The CA's key signs nothing else."""
    directory = Path(directory)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + VALIDITY  # a little clock skew

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = _name("SecCL deployment CA")
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )

    credentials = ServerCredentials(
        ca_certificate=directory / "ca.crt",
        certificate=directory / "server.crt",
        private_key=directory / "server.key",
    )
    write_new_private(directory / "ca.key", _pem_key(ca_key))
    write_new_private(credentials.private_key, _pem_key(server_key))
    atomic_write_bytes(credentials.ca_certificate, ca_certificate.public_bytes(serialization.Encoding.PEM))
    atomic_write_bytes(credentials.certificate, server_certificate.public_bytes(serialization.Encoding.PEM))
    return credentials


def new_node_key(private_key: Path, comment: str = "") -> NodeKey:
    """A fresh SuperNode authentication key pair, both halves in OpenSSH format (what
    ``ssh-keygen -t ecdsa -b 384 -N ""`` writes): the private key at ``private_key`` (0600), the
    public one beside it with ``.pub`` appended."""
    private_key = Path(private_key)
    public_key = private_key.with_name(private_key.name + ".pub")
    key = ec.generate_private_key(NODE_CURVE())
    write_new_private(
        private_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    atomic_write_bytes(public_key, line + (f" {comment}".encode() if comment else b"") + b"\n")
    return NodeKey(private_key=private_key, public_key=public_key)
