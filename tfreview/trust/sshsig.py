"""SSHSIG signatures (openssh's PROTOCOL.sshsig), verified in-process with the `cryptography` package.

A verified signature guarantees: the holder of the private half of `public_key` signed exactly `message` under
namespace `tfreview`. Nothing more: who that holder is comes from the policy's `[signers]` (trust/policy.py).

The armoured signature (what `ssh-keygen -Y sign` writes) wraps this blob:

    byte[6] "SSHSIG"  uint32 1  string publickey  string namespace  string reserved  string hash_algorithm
    string signature

and the signature covers "SSHSIG" string(namespace) string(reserved) string(hash_algorithm)
string(H(message)). Supported keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (signatures rsa-sha2-256
or rsa-sha2-512, never SHA-1), and the FIDO keys sk-ssh-ed25519@openssh.com and
sk-ecdsa-sha2-nistp256@openssh.com (their signature covers sha256(application) || flags || counter ||
sha256(signed data); user presence must be asserted).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

NAMESPACE = "tfreview"
MAGIC = b"SSHSIG"
ARMOUR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOUR_END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_CURVES = {"nistp256": ("SECP256R1", "sha256"), "nistp384": ("SECP384R1", "sha384"),
           "nistp521": ("SECP521R1", "sha512")}
_SK_USER_PRESENT = 0x01


class SignatureError(ValueError):
    """A signature that does not verify, or bytes that are not an SSHSIG signature / an OpenSSH public key."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SignatureError("truncated SSH data")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.pos == len(self.data)


def _string(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def fingerprint(key_blob: bytes) -> str:
    """The key's fingerprint as `ssh-keygen -l` prints it: SHA256:<unpadded base64>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class PublicKey:
    """An OpenSSH public key: its type (ssh-ed25519...), wire blob, and fingerprint (SHA256:...)."""

    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def line(self) -> str:
        """The key as an authorized_keys / allowed_signers key: "TYPE BASE64"."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"


def parse_public_key(line: str) -> PublicKey:
    """A public key line ("ssh-ed25519 AAAA... comment", options not allowed); SignatureError if unreadable."""
    parts = line.strip().split()
    if len(parts) < 2:
        raise SignatureError("not an OpenSSH public key line (want: TYPE BASE64 [comment])")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the public key's base64 is invalid") from None
    key_type = _Reader(blob).string().decode("ascii", "replace")
    if key_type != parts[0]:
        raise SignatureError(f"the public key says {parts[0]} but holds a {key_type} key")
    _load_key(blob)  # unsupported or malformed keys are refused when read, not when first used
    return PublicKey(key_type, blob)


@lru_cache(maxsize=4096)
def _load_key(blob: bytes) -> tuple[str, Any, bytes, str]:
    """(key type, cryptography public key object, FIDO application or b"", ECDSA hash name or "") of a
    wire-format key blob."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    r = _Reader(blob)
    key_type = r.string().decode("ascii", "replace")
    digest = ""
    try:
        if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
            key: Any = ed25519.Ed25519PublicKey.from_public_bytes(r.string())
        elif key_type.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
            curve_name = r.string().decode("ascii", "replace")
            if curve_name not in _CURVES or (key_type.startswith("sk-") and curve_name != "nistp256"):
                raise SignatureError(f"unsupported ECDSA curve {curve_name}")
            curve_class, digest = _CURVES[curve_name]
            curve = getattr(ec, curve_class)()
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, r.string())
        elif key_type == "ssh-rsa":
            e, n = r.mpint(), r.mpint()
            if n.bit_length() < 2048:
                raise SignatureError(f"RSA keys of {n.bit_length()} bits are too weak (2048 at least)")
            key = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            raise SignatureError(f"unsupported key type {key_type}")
        application = r.string() if key_type.startswith("sk-") else b""
    except SignatureError:
        raise
    except ValueError as exc:
        raise SignatureError(f"malformed {key_type} public key: {exc}") from None
    if not r.done():
        raise SignatureError("trailing bytes after the public key")
    return key_type, key, application, digest


def armour(blob: bytes) -> str:
    """The armoured text of an SSHSIG blob, as ssh-keygen writes it (76-character lines)."""
    b64 = base64.b64encode(blob).decode()
    return "\n".join([ARMOUR_BEGIN, *(b64[i:i + 76] for i in range(0, len(b64), 76)), ARMOUR_END]) + "\n"


def unarmour(text: str) -> bytes:
    """The SSHSIG blob inside an armoured signature; SignatureError if it is not one."""
    body = text.strip()
    if not body.startswith(ARMOUR_BEGIN) or not body.endswith(ARMOUR_END):
        raise SignatureError("not an SSH signature (-----BEGIN SSH SIGNATURE----- armour)")
    try:
        return base64.b64decode("".join(body[len(ARMOUR_BEGIN):-len(ARMOUR_END)].split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature's base64 is invalid") from None


@dataclass(frozen=True)
class Sshsig:
    """A parsed SSHSIG blob."""

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature: bytes


def parse_signature(text: str) -> Sshsig:
    """Parse an armoured SSHSIG signature (not verified: see `verify`)."""
    r = _Reader(unarmour(text))
    if r.take(6) != MAGIC:
        raise SignatureError("not an SSHSIG blob (magic)")
    version = r.uint32()
    if version != 1:
        raise SignatureError(f"unsupported SSHSIG version {version}")
    key_blob = r.string()
    namespace, _reserved = r.string().decode("utf-8", "replace"), r.string()
    hash_algorithm = r.string().decode("ascii", "replace")
    signature = r.string()
    if not r.done():
        raise SignatureError("trailing bytes after the signature")
    key_type = _Reader(key_blob).string().decode("ascii", "replace")
    return Sshsig(PublicKey(key_type, key_blob), namespace, hash_algorithm, signature)


def signed_data(message: bytes, namespace: str = NAMESPACE, hash_algorithm: str = "sha512") -> bytes:
    """What an SSHSIG signature of `message` covers."""
    return (MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_algorithm.encode())
            + _string(_HASHES[hash_algorithm](message).digest()))


def verify(message: bytes, signature: str, namespace: str = NAMESPACE) -> PublicKey:
    """Verify armoured SSHSIG `signature` over `message` in `namespace`; returns the signing public key (the caller
    decides whether that key is trusted). SignatureError (saying why) otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    sig = parse_signature(signature)
    if sig.namespace != namespace:
        raise SignatureError(f"signed for namespace {sig.namespace!r}, not {namespace!r}")
    if sig.hash_algorithm not in _HASHES:
        raise SignatureError(f"unsupported hash algorithm {sig.hash_algorithm!r}")
    key_type, key, application, ec_digest = _load_key(sig.public_key.blob)
    data = signed_data(message, namespace, sig.hash_algorithm)
    r = _Reader(sig.signature)
    sig_type = r.string().decode("ascii", "replace")
    raw = r.string()
    if key_type.startswith("sk-"):
        flags, counter = r.take(1), r.take(4)
        if not flags[0] & _SK_USER_PRESENT:
            raise SignatureError("the security key did not assert user presence")
        data = hashlib.sha256(application).digest() + flags + counter + hashlib.sha256(data).digest()
    if not r.done():
        raise SignatureError("trailing bytes after the signature")
    try:
        if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
            if sig_type != key_type:
                raise SignatureError(f"a {sig_type} signature from a {key_type} key")
            key.verify(raw, data)
        elif key_type.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
            if sig_type != key_type:
                raise SignatureError(f"a {sig_type} signature from a {key_type} key")
            rs = _Reader(raw)
            der = encode_dss_signature(rs.mpint(), rs.mpint())
            digest: hashes.HashAlgorithm = (hashes.SHA256() if ec_digest == "sha256" else
                                            hashes.SHA384() if ec_digest == "sha384" else hashes.SHA512())
            key.verify(der, data, ec.ECDSA(digest))
        else:  # ssh-rsa
            algo = {"rsa-sha2-256": hashes.SHA256, "rsa-sha2-512": hashes.SHA512}.get(sig_type)
            if algo is None:
                raise SignatureError(f"RSA signature algorithm {sig_type} is not accepted (use rsa-sha2-512)")
            key.verify(raw, data, padding.PKCS1v15(), algo())
    except InvalidSignature:
        raise SignatureError("the signature does not match the statement (edited after signing, or forged)") from None
    return sig.public_key
