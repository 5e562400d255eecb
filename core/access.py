"""Who may do what: identities, roles and data clearance, as pure functions the web side enforces.

Roles rank viewer (leaders) < officer (duty) < admin. Two identities are not users: `anonymous`
(a visitor not signed in, allowed only where the deployment says so) and `display` (a wall screen
holding a revocable read-only token). Neither may write anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import AuthSettings

RANK = {"anonymous": 0, "display": 0, "viewer": 1, "officer": 2, "admin": 3}

# action -> the least role that may do it
PERMISSIONS = {
    "alert.acknowledge": "officer",
    "alert.assign": "officer",
    "alert.comment": "officer",
    "alert.close": "officer",
    "alert.silence": "officer",
    "source.run": "admin",
    "source.view": "officer",
    "users.manage": "admin",
}


@dataclass(frozen=True)
class Identity:
    """The requester: a user, a display token, or an anonymous visitor."""

    name: str
    role: str
    user_id: int | None = None
    token_id: int | None = None
    department: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    def at_least(self, role: str) -> bool:
        """Display and anonymous identities rank below every user, whatever role is asked."""
        return self.signed_in and RANK[self.role] >= RANK[role]

    def may(self, action: str) -> bool:
        return self.at_least(PERMISSIONS[action])


ANONYMOUS = Identity(name="anonymous", role="anonymous")


def may_view(identity: Identity, auth: AuthSettings) -> bool:
    """Whether the identity may see the read-only pages at all."""
    return identity.role != "anonymous" or auth.anonymous


def clearance(identity: Identity, auth: AuthSettings) -> frozenset[str]:
    """The data classifications the identity may see (public / internal / restricted)."""
    if not may_view(identity, auth):
        return frozenset()
    return frozenset(level for level, roles in auth.clearance.items() if identity.role in roles)
