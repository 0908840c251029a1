"""The deployment's key for personal data at rest: ID numbers and party phones.

Values are encrypted with AES-256-GCM and made exactly searchable through an HMAC-SHA-256 of
their normalised form; both keys are derived (HKDF) from one secret the deployment owns:
`CMDCENTER_SECRET_KEY`, or the key file `<data dir>/secret.key` that the first process creates
(mode 0600) while the database holds no key fingerprint yet. The database keeps only the
secret's fingerprint:

- a process whose secret has another fingerprint refuses to start (`KeyMismatch`);
- a process without the secret starts, but cannot encrypt, decrypt or search
  (`Keyring.available` is False; callers answer 503 `unavailable`).

On several hosts, set `CMDCENTER_SECRET_KEY` on each or copy the key file.

>>> ring = Keyring(b"x" * 32)
>>> ring.decrypt(ring.encrypt("330102199001011234"))
'330102199001011234'
>>> ring.index("13812341234") == ring.index("13812341234")
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from command.errors import DomainError

KEY_FILE = "secret.key"
FINGERPRINT_META = "secret_key_fingerprint"
MIN_SECRET = 32  # characters of CMDCENTER_SECRET_KEY


class KeyMismatch(Exception):
    """The secret given to this process is not the one the database was written with."""


class Keyring:
    """Encrypt, decrypt and index personal values with the deployment's secret (or none)."""

    def __init__(self, secret: bytes | None, source: str = "") -> None:
        self.source = source
        self._secret = secret
        if secret is None:
            self._aead = self._index_key = None
            return
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(_derive(secret, b"cmdcenter/personal-data/aes-gcm"))
        self._index_key = _derive(secret, b"cmdcenter/personal-data/index")

    def __repr__(self) -> str:
        return f"Keyring(available={self.available}, source={self.source!r})"

    @property
    def available(self) -> bool:
        """Whether this process holds the secret."""
        return self._secret is not None

    @property
    def fingerprint(self) -> str | None:
        """A short digest that identifies the secret without revealing it."""
        return None if self._secret is None else fingerprint(self._secret)

    def require(self) -> None:
        """Raise 503 `unavailable` when this process has no secret."""
        if not self.available:
            raise DomainError("unavailable", "this server has no key for personal data (set "
                              "CMDCENTER_SECRET_KEY or copy the key file into the data dir); "
                              "ID numbers and party phones cannot be stored, shown or searched")

    def encrypt(self, value: str) -> str:
        """AES-GCM ciphertext of `value`, as text (nonce + ciphertext, base64)."""
        self.require()
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), b"cmdcenter")
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The value sealed by `encrypt`."""
        self.require()
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], b"cmdcenter").decode("utf-8")

    def index(self, value: str) -> str:
        """The keyed hash an exact search compares (of the value as the caller normalised it)."""
        self.require()
        return hmac.new(self._index_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _derive(secret: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def fingerprint(secret: bytes) -> str:
    """The secret's fingerprint as kept in the database (16 hex digits)."""
    return hmac.new(secret, b"cmdcenter/key-fingerprint", hashlib.sha256).hexdigest()[:16]


def read_secret(text: str, where: str) -> bytes:
    """A secret from its text form (the env variable or the key file's content)."""
    text = text.strip()
    if len(text) < MIN_SECRET:
        from command.config import ConfigError

        raise ConfigError(f"{where}: the secret key must be at least {MIN_SECRET} characters")
    return text.encode("utf-8")


def open_keyring(*, env_secret: str | None, data_dir: Path, stored_fingerprint: str | None,
                 create: bool = True) -> tuple[Keyring, str | None]:
    """The keyring this process runs with, and the fingerprint to store (None: already stored).

    Raises KeyMismatch when the secret found differs from the database's.
    """
    key_file = data_dir / KEY_FILE
    if env_secret:
        secret, source = read_secret(env_secret, "CMDCENTER_SECRET_KEY"), "CMDCENTER_SECRET_KEY"
    elif key_file.is_file():
        secret, source = read_secret(key_file.read_text(), str(key_file)), str(key_file)
    elif stored_fingerprint is None and create:
        try:
            secret = write_key_file(key_file)
        except FileExistsError:  # another process of this host made it a moment ago
            secret = read_secret(key_file.read_text(), str(key_file))
        source = str(key_file)
    else:
        return Keyring(None), None
    found = fingerprint(secret)
    if stored_fingerprint is not None and stored_fingerprint != found:
        raise KeyMismatch(
            f"the secret key from {source} (fingerprint {found}) is not the key this database "
            f"was written with (fingerprint {stored_fingerprint}); use the deployment's key")
    return Keyring(secret, source), (found if stored_fingerprint is None else None)


def write_key_file(path: Path) -> bytes:
    """Create a new random key file readable by its owner only; refuse to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    return text.encode("utf-8")
