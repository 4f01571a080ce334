"""Claude credentials: what an import carries, how it is stored, and what may be shown of it.

Pure: no I/O. The host shim finds a credential (host_shim/auth.py), sends it to the parent
over the stdin of an exec as one JSON document (`wire`), and the parent stores it in the
shared Claude home (parent_agent/auth.py) where Claude Code looks for it:

- `oauth`: the host's `.credentials.json` (Linux file or macOS Keychain item), verbatim.
- `token`: a long-lived `claude setup-token` token, stored as an OAuth credential that
  Claude Code uses without refreshing (it lasts a year).
- `api-key`: an Anthropic API key, stored as `primaryApiKey` in `.claude.json`, where
  Claude Code keeps a key it was given at /login.

Nothing here formats a secret; `describe` and `summary` show kind, source and expiry only.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from hal_common.errors import UsageError

Kind = Literal["oauth", "token", "api-key"]
KINDS: tuple[Kind, ...] = ("oauth", "token", "api-key")

KEYCHAIN_SERVICE = "Claude Code-credentials"
MAX_BYTES = 64 * 1024
TOKEN_LIFETIME_S = 365 * 24 * 3600  # `claude setup-token` tokens last a year


class CredentialError(UsageError):
    """A credential that cannot be used; the message never holds the secret."""


@dataclass(frozen=True)
class Credential:
    kind: Kind
    source: str  # where it came from, for `auth status` ("~/.claude/.credentials.json", …)
    secret: str = field(repr=False)  # the JSON document (oauth) or the token / key

    def wire(self) -> bytes:
        """The bytes sent to the parent's `hal-agent auth import` on stdin."""
        doc = {"kind": self.kind, "source": self.source, "secret": self.secret}
        return json.dumps(doc).encode()

    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    def expires_at(self) -> float | None:
        """Seconds since the epoch, when known."""
        if self.kind == "oauth":
            return oauth_expiry(json.loads(self.secret))
        return None


def fingerprint(secret: str) -> str:
    """A short one-way tag to tell two credentials apart (never the secret)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def from_wire(data: bytes) -> Credential:
    if len(data) > MAX_BYTES:
        raise CredentialError(f"credential too large ({len(data)} bytes, at most {MAX_BYTES})")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise CredentialError(f"not a credential document (bad JSON at {e})") from None
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        raise CredentialError("not a credential document (no known kind)")
    secret, source = doc.get("secret"), doc.get("source", "unknown")
    if not isinstance(secret, str) or not isinstance(source, str):
        raise CredentialError("not a credential document (secret and source must be strings)")
    cred = Credential(doc["kind"], source, secret)
    check(cred)
    return cred


def check(cred: Credential) -> None:
    """Raise CredentialError when the credential can't be what its kind says."""
    if cred.kind == "oauth":
        parse_oauth(cred.secret, cred.source)
    elif not cred.secret or any(c.isspace() for c in cred.secret):
        raise CredentialError(f"{cred.source}: the {cred.kind} is empty or holds whitespace")


def parse_oauth(text: str, source: str) -> dict[str, Any]:
    """Claude's `.credentials.json` document, checked to hold an OAuth access token."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise CredentialError(f"{source} is not JSON") from None
    oauth = doc.get("claudeAiOauth") if isinstance(doc, dict) else None
    if not isinstance(oauth, dict) or not isinstance(oauth.get("accessToken"), str):
        raise CredentialError(f"{source} holds no claudeAiOauth.accessToken")
    checked: dict[str, Any] = doc
    return checked


def oauth_expiry(doc: dict[str, Any]) -> float | None:
    expires = (doc.get("claudeAiOauth") or {}).get("expiresAt")
    return expires / 1000 if isinstance(expires, int | float) and expires > 0 else None


def classify_text(text: str, source: str) -> Credential:
    """A file the user names: a `.credentials.json`, a setup-token token or an API key."""
    stripped = text.strip()
    if stripped.startswith("{"):
        parse_oauth(stripped, source)
        return Credential("oauth", source, stripped)
    if stripped.startswith("sk-ant-api"):
        kind: Kind = "api-key"
    elif stripped.startswith("sk-ant-oat"):
        kind = "token"
    else:
        raise CredentialError(
            f"{source} holds neither a Claude credentials file, a `claude setup-token` token "
            "(sk-ant-oat…) nor an API key (sk-ant-api…)"
        )
    cred = Credential(kind, source, stripped)
    check(cred)
    return cred


def token_document(token: str, now: float | None = None) -> dict[str, Any]:
    """The `.credentials.json` Claude Code reads for a long-lived token (no refresh token)."""
    now = time.time() if now is None else now
    return {
        "claudeAiOauth": {
            "accessToken": token,
            "refreshToken": None,
            "expiresAt": int((now + TOKEN_LIFETIME_S) * 1000),
            "scopes": ["user:inference"],
            "subscriptionType": None,
        }
    }


def summary(credentials_doc: dict[str, Any] | None, api_key: bool) -> dict[str, Any]:
    """What Claude Code would find in the Claude home, without a secret."""
    if credentials_doc is not None:
        oauth = credentials_doc.get("claudeAiOauth") or {}
        return {
            "present": True,
            "expires_at": oauth_expiry(credentials_doc),
            "refreshable": bool(oauth.get("refreshToken")),
            "scopes": list(oauth.get("scopes") or []),
            "subscription": oauth.get("subscriptionType"),
        }
    return {
        "present": api_key,
        "expires_at": None,
        "refreshable": False,
        "scopes": [],
        "subscription": None,
    }


def describe_expiry(expires_at: float | None, now: float | None = None) -> str:
    if expires_at is None:
        return "does not expire"
    now = time.time() if now is None else now
    left = expires_at - now
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
    if left <= 0:
        return f"expired {stamp}"
    if left < 3600:
        return f"expires {stamp} (in {int(left // 60)} min)"
    if left < 2 * 86400:
        return f"expires {stamp} (in {left / 3600:.0f} h)"
    return f"expires {stamp} (in {left / 86400:.0f} days)"
