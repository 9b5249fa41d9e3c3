"""A Docker engine reached over ``tcp://`` with TLS, as a remote target is:
a relay on a free port of 127.0.0.1 that demands a client certificate from
the test's own authority and passes the bytes on to the local engine's
socket. The client side (docker-py, certificates, hostname checks) is what
a remote engine would see."""

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deployments.engine import LOCAL_SOCKET

CHUNK = 64 * 1024


def _key_write(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _key_usage(*, authority: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=authority,
        crl_sign=authority,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    *,
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        # What strict verification (urllib3 asks for it) wants of each.
        .add_extension(_key_usage(authority=issuer is None), True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def certificates_write(folder: Path, *, name: str = "client") -> None:
    """A certificate authority, the engine's certificate and a client's, in
    the files ``DOCKER_CERT_PATH`` names (ca.pem, cert.pem, key.pem), plus
    the engine's own (server-cert.pem, server-key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = _certificate(
        subject=f"{name} authority", key=authority_key, issuer=None,
        issuer_key=authority_key, usage=None,
    )  # fmt: skip
    for role, usage in (
        ("server-", ExtendedKeyUsageOID.SERVER_AUTH),
        ("", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _certificate(
            subject=f"{name} {role or 'client'}", key=key, issuer=authority,
            issuer_key=authority_key, usage=usage,
        )  # fmt: skip
        (folder / f"{role}cert.pem").write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )
        _key_write(folder / f"{role}key.pem", key)
    (folder / "ca.pem").write_bytes(authority.public_bytes(serialization.Encoding.PEM))


class TlsEngine:
    """The relay; ``connections`` counts the clients that passed the TLS
    handshake with a valid certificate."""

    def __init__(self, certificates: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(
            certificates / "server-cert.pem", certificates / "server-key.pem"
        )
        self.context.load_verify_locations(certificates / "ca.pem")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        self.connections += 1
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect(LOCAL_SOCKET)
        threading.Thread(target=_pump, args=(engine, client), daemon=True).start()
        _pump(client, engine)


def _pump(source: socket.socket, destination: socket.socket) -> None:
    try:
        while chunk := source.recv(CHUNK):
            destination.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, destination):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
