"""API keys with roles. A key is shown once at creation; only its SHA-256 is stored.

Keys are 256-bit random tokens, so a fast hash is enough: there is nothing to brute-force, unlike a
password. Failed attempts over HTTP are still rate-limited per client address (``auth_limit``, applied in
``api.deps``). Roles: ``agent`` may only ingest (optionally for one agent_id and one site: a key that may write any
site's zones could add counts it knows to a withheld cell until it releases, and subtract), ``viewer`` may read,
``admin`` may read and manage zones, keys and the dead-letter table, ``metrics`` may only read ``/metrics`` (a
Prometheus scraper's key).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal, cast

from footfall.server.tables import ApiKey
from sqlalchemy import select
from sqlalchemy.orm import Session

Role = Literal["agent", "viewer", "admin", "metrics"]
ROLES: tuple[Role, ...] = ("agent", "viewer", "admin", "metrics")
KEY_PREFIX = "ffk_"


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: Role
    agent_id: str | None
    site_id: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, name: str, role: str, agent_id: str | None = None, site_id: str | None = None
) -> tuple[str, ApiKey]:
    """Creates a key; returns the plaintext (show it once, it cannot be recovered) and the stored row."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if not name.strip():
        raise ValueError("a key needs a name (who or what uses it)")
    if agent_id is not None and role != "agent":
        raise ValueError("only agent keys can be bound to an agent id")
    if site_id is not None and role != "agent":
        raise ValueError("only agent keys can be bound to a site")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name.strip(),
        role=role,
        key_hash=hash_key(plaintext),
        prefix=plaintext[:10],
        agent_id=agent_id,
        site_id=site_id,
        created_at=int(time.time()),
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return plaintext, row


def authenticate(session: Session, key: str) -> Principal | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        return None
    # The role column holds only ROLES (create_key checks it); the table types it as any string.
    return Principal(row.id, row.name, cast(Role, row.role), row.agent_id, row.site_id)


def revoke_key(session: Session, key_id: int) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = int(time.time())
    return True
