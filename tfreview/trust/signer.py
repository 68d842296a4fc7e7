"""The signing key of whoever runs tfreview, and signing through `ssh-keygen -Y sign -n tfreview` (shell).

The key comes from TFREVIEW_SIGNING_KEY (a private key file, or a public key file whose private half is in
ssh-agent: hardware `sk-` keys work that way), else git's `user.signingkey` (a path, or a literal "key::ssh-..."
/ "ssh-..." public key, as git's SSH commit signing accepts). ssh-keygen does the signing so agents, FIDO keys
and passphrases work as they do for git; verification is in-process (sshsig.py).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from tfreview.errors import BadInput
from tfreview.trust.sshsig import NAMESPACE, PublicKey, SignatureError, parse_public_key

HOW_TO = ("make one with `ssh-keygen -t ed25519 -f ~/.ssh/tfreview` and set TFREVIEW_SIGNING_KEY=~/.ssh/tfreview "
          "(or a .pub whose key is in ssh-agent, or git config user.signingkey); an admin adds its .pub to the "
          "policy's [signers]")
_PUBLIC_PREFIXES = ("ssh-", "ecdsa-", "sk-")


@dataclass(frozen=True)
class Signer:
    """A signing key: `key_file` is given to `ssh-keygen -Y sign -f` (a private key, or a public key in the agent)."""

    key_file: Path
    public_key: PublicKey

    def sign(self, message: bytes) -> str:
        """The armoured SSHSIG signature of `message` (namespace tfreview); BadInput when ssh-keygen cannot sign."""
        try:
            out = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(self.key_file)],
                                 input=message, capture_output=True, timeout=120)
        except FileNotFoundError:
            raise BadInput("ssh-keygen is not installed", "install OpenSSH (ssh-keygen signs tfreview's decisions)") from None
        except subprocess.TimeoutExpired:
            raise BadInput("ssh-keygen did not sign within 120 s", "touch your security key, or check ssh-agent") from None
        if out.returncode != 0 or b"BEGIN SSH SIGNATURE" not in out.stdout:
            why = (out.stderr.decode("utf-8", "replace").strip().splitlines() or ["no signature"])[-1]
            raise BadInput(f"cannot sign with {self.key_file}: {why[:200]}",
                           "check the key's passphrase, or that ssh-agent holds it (ssh-add -l)")
        return out.stdout.decode("ascii")


def _git_signing_key() -> str | None:
    try:
        out = subprocess.run(["git", "config", "user.signingkey"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _public_key_of(path: Path) -> PublicKey:
    """The public key of key file `path`: the file itself when it is a public key, else `path.pub`, else asked of
    ssh-keygen -y (works for unencrypted private keys)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise BadInput(f"cannot read signing key {path}: {exc.strerror}", HOW_TO) from None
    candidates = [text] if text.lstrip().startswith(_PUBLIC_PREFIXES) else []
    pub = path.with_name(path.name + ".pub")
    if not candidates and pub.is_file():
        candidates.append(pub.read_text(errors="replace"))
    if not candidates:
        out = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise BadInput(f"{path} is not an SSH key ssh-keygen can read", HOW_TO)
        candidates.append(out.stdout)
    try:
        return parse_public_key(candidates[0].strip().splitlines()[0])
    except (SignatureError, IndexError) as exc:
        raise BadInput(f"signing key {path}: {exc}", HOW_TO) from None


def _public_key_file(literal: str) -> Path:
    """The file ssh-keygen reads for a literal public key: one per key in the user's own cache folder
    (~/.cache/tfreview/signing, owner-only), written once, never a new temporary file per run."""
    folder = Path.home() / ".cache" / "tfreview" / "signing"
    text = literal + "\n"
    path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.pub"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.is_file() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".key-", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
    except OSError as exc:
        raise BadInput(f"cannot write the public signing key to {folder}: {exc.strerror}", HOW_TO) from None
    return path


def find_signer(environ: Mapping[str, str] | None = None) -> Signer:
    """The signer from TFREVIEW_SIGNING_KEY, else git's user.signingkey; BadInput (exit 2, with a how-to) if none."""
    env = os.environ if environ is None else environ
    configured = env.get("TFREVIEW_SIGNING_KEY", "").strip() or _git_signing_key()
    if not configured:
        raise BadInput("no signing key: tfreview decisions are signed with your SSH key", HOW_TO)
    literal = configured.removeprefix("key::")
    if literal.startswith(_PUBLIC_PREFIXES):  # git accepts the public key itself; ssh-keygen wants a file
        path = _public_key_file(literal)
    else:
        path = Path(os.path.expanduser(configured))
        if not path.is_file():
            raise BadInput(f"signing key {path} does not exist", HOW_TO)
    return Signer(path, _public_key_of(path))
