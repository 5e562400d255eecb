"""Users, passwords and access tokens.

Passwords are hashed with Argon2id (a deliberately slow, memory-hard hash); tokens are random and
only their SHA-256 is stored, so a copy of the database gives away neither. Repeated failed
sign-ins slow the account down: after `throttle_after` failures each further attempt must wait
twice as long as the previous one (capped), and an attempt made too early is refused unchecked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.settings import ROLES
from core.timeutil import as_utc, utcnow
from store.models import AccessToken, User

MIN_PASSWORD = 8
MAX_WAIT = timedelta(minutes=5)
TOKEN_KINDS = ("display", "api")
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


class UserError(ValueError):
    """A refused user-management request, with a reason fit to show."""


@dataclass(frozen=True)
class SignIn:
    user: User | None
    wait_seconds: float = 0.0
    checked: bool = True  # False: refused unchecked because the account is being slowed down


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    department: str | None = None,
) -> User:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if find_user(session, username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        department=department,
        disabled=False,
        created_at=utcnow(),
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def _existing(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def set_password(session: Session, username: str, password: str) -> User:
    user = _existing(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    return user


def set_disabled(session: Session, username: str, disabled: bool) -> User:
    user = _existing(session, username)
    user.disabled = disabled
    return user


def set_role(session: Session, username: str, role: str) -> User:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    user = _existing(session, username)
    user.role = role
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def throttle_wait(
    failures: int, last_failed_at: datetime | None, now: datetime, throttle_after: int
) -> float:
    """Seconds still to wait before the next attempt is even checked (0: go ahead)."""
    if failures < throttle_after or last_failed_at is None:
        return 0.0
    delay = min(timedelta(seconds=2 ** (failures - throttle_after)), MAX_WAIT)
    remaining = as_utc(last_failed_at) + delay - now
    return max(0.0, remaining.total_seconds())


def authenticate(
    session: Session, username: str, password: str, throttle_after: int, now: datetime | None = None
) -> SignIn:
    """Check a sign-in. The caller commits (the failure counter must persist either way)."""
    now = now or utcnow()
    user = find_user(session, username)
    if user is None or user.disabled:
        try:
            _hasher.verify(_DUMMY_HASH, password + "x")
        except VerificationError:
            pass
        return SignIn(None)
    wait = throttle_wait(user.failed_logins, user.last_failed_at, now, throttle_after)
    if wait > 0:
        return SignIn(None, wait, checked=False)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        user.last_failed_at = now
        return SignIn(None, throttle_wait(user.failed_logins, now, now, throttle_after))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.last_login_at = now
    return SignIn(user)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, kind: str, name: str, user_id: int | None = None
) -> tuple[AccessToken, str]:
    """A new token; the plain text is returned once and never stored."""
    if kind not in TOKEN_KINDS:
        raise UserError(f"unknown token kind {kind!r} (known: {', '.join(TOKEN_KINDS)})")
    if kind == "api" and user_id is None:
        raise UserError("an API token acts for a user: name the user")
    plain = secrets.token_urlsafe(32)
    token = AccessToken(
        kind=kind, name=name, token_hash=token_digest(plain), user_id=user_id, created_at=utcnow()
    )
    session.add(token)
    session.flush()
    return token, plain


def find_token(session: Session, plain: str, kind: str) -> AccessToken | None:
    """The live (not revoked) token of this kind with this text, if any."""
    if not plain:
        return None
    return session.scalar(
        select(AccessToken).where(
            AccessToken.token_hash == token_digest(plain),
            AccessToken.kind == kind,
            AccessToken.revoked_at.is_(None),
        )
    )


def live_token(session: Session, token_id: int) -> AccessToken | None:
    return session.scalar(
        select(AccessToken).where(AccessToken.id == token_id, AccessToken.revoked_at.is_(None))
    )


def revoke_token(session: Session, token_id: int) -> bool:
    revoked = session.execute(
        update(AccessToken)
        .where(AccessToken.id == token_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    return bool(revoked)


def list_tokens(session: Session) -> list[AccessToken]:
    return list(session.scalars(select(AccessToken).order_by(AccessToken.id)))


def ensure_demo_user(session: Session, username: str, password: str, role: str) -> User:
    """Demo deployments only: the account exists with exactly this password and role."""
    user = find_user(session, username)
    if user is None:
        return create_user(session, username, password, role)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.password_hash = hash_password(password)
    user.role, user.disabled, user.failed_logins = role, False, 0
    return user
