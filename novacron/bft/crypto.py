"""Signing keys for PBFT replicas and clients: real Ed25519, and a fast stand-in for the simulator.

Theory of operation
-------------------
A replica holds one ``Signer`` (its own private key) and one ``Verifier`` (everybody's public
keys). A Byzantine replica is given only its own signer, so it can sign anything *as itself*
but cannot make a message that verifies as another replica's: that is the whole security
assumption PBFT with signatures needs (Castro and Liskov 2002, section 2.1).

- ``Ed25519Keyring`` uses ``cryptography``'s Ed25519 (RFC 8032). Keys derive from a seed, so a
  test or a simulated run is reproducible; a real deployment would load them from files instead.
  ``cryptography`` (like libsodium/PyNaCl) offers no batch verification for Ed25519, so there is
  nothing to batch; what the replica does instead is never verify the same signed message twice
  (``CachingVerifier``): a prepare seen on its own and again inside a view-change or a catch-up
  certificate is checked once.
- ``SimulatedKeyring`` signs with HMAC-SHA256 under a per-identity secret and verifies by
  recomputing it -- a trusted oracle that plays the role of the public-key infrastructure. Without
  the secret a forger cannot produce a verifying tag, which is the property the protocol relies
  on; it is ~50x cheaper than Ed25519, which is what lets the Byzantine swarm run ten thousand
  seeds. The verify path inside the replica is the same for both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Protocol

SIGNATURE_SCHEMES = ("simulated", "ed25519")


class Signer(Protocol):
    identity: int

    def sign(self, data: bytes) -> bytes: ...


class Verifier(Protocol):
    def verify(self, identity: int, data: bytes, signature: bytes) -> bool: ...


def _secret(seed: int, identity: int) -> bytes:
    return hashlib.sha256(b"novacron-bft:%d:%d" % (seed, identity)).digest()


class _HmacSigner:
    def __init__(self, identity: int, secret: bytes) -> None:
        self.identity = identity
        self._secret = secret

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, "sha256")


class SimulatedKeyring:
    """Secrets for ``identities``, derived from ``seed``; ``signer(i)`` hands out one identity's key."""

    def __init__(self, seed: int, identities: Iterable[int]) -> None:
        self._secrets = {i: _secret(seed, i) for i in identities}

    def signer(self, identity: int) -> Signer:
        return _HmacSigner(identity, self._secrets[identity])

    def verify(self, identity: int, data: bytes, signature: bytes) -> bool:
        secret = self._secrets.get(identity)
        return secret is not None and hmac.compare_digest(hmac.digest(secret, data, "sha256"), signature)


class _Ed25519Signer:
    def __init__(self, identity: int, key: object) -> None:
        self.identity = identity
        self._key = key

    def sign(self, data: bytes) -> bytes:
        signature: bytes = self._key.sign(data)  # type: ignore[attr-defined]
        return signature


class Ed25519Keyring:
    """Ed25519 key pairs for ``identities``, derived from ``seed`` (reproducible test keys)."""

    def __init__(self, seed: int, identities: Iterable[int]) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._private = {i: Ed25519PrivateKey.from_private_bytes(_secret(seed, i)) for i in identities}
        self._public = {i: key.public_key() for i, key in self._private.items()}

    def signer(self, identity: int) -> Signer:
        return _Ed25519Signer(identity, self._private[identity])

    def public_bytes(self, identity: int) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self._public[identity].public_bytes(Encoding.Raw, PublicFormat.Raw)

    def verify(self, identity: int, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        key = self._public.get(identity)
        if key is None or len(signature) != 64:
            return False
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


Keyring = SimulatedKeyring | Ed25519Keyring


def make_keyring(scheme: str, seed: int, identities: Iterable[int]) -> Keyring:
    if scheme == "simulated":
        return SimulatedKeyring(seed, identities)
    if scheme == "ed25519":
        return Ed25519Keyring(seed, identities)
    raise ValueError(f"signature scheme {scheme!r}: allowed: {', '.join(SIGNATURE_SCHEMES)}")


class CachingVerifier:
    """Remembers which (identity, data, signature) verified, up to ``capacity`` of them.

    Also counts what it did, for the signatures' share of the cost."""

    def __init__(self, inner: Verifier, capacity: int = 4096) -> None:
        self._inner = inner
        self._capacity = capacity
        self._good: set[tuple[int, bytes, bytes]] = set()
        self.verified = 0
        self.cache_hits = 0

    def verify(self, identity: int, data: bytes, signature: bytes) -> bool:
        key = (identity, signature, data)
        if key in self._good:
            self.cache_hits += 1
            return True
        self.verified += 1
        if not self._inner.verify(identity, data, signature):
            return False
        if len(self._good) >= self._capacity:
            self._good.clear()  # cheap and bounded; a miss only costs one more verification
        self._good.add(key)
        return True
