"""Who may start work: the server's token and the loopback rule (no FastAPI here, so that
``multivector serve`` can refuse to start before anything is imported or bound).

A server with a token answers every request that starts computation or writes the store only when
it carries ``Authorization: Bearer <token>`` (:func:`multivector.interfaces.server.deps.write_access`);
reading stays open. A server reachable from other machines must have one.
"""

from __future__ import annotations

import ipaddress
import secrets

from multivector.errors import InputError

MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe())'"
TOKEN_HINT = f"make one with: {MAKE_TOKEN}"
MIN_TOKEN_LENGTH = 16


class Unauthorized(Exception):
    """A request that writes or starts work came without the server's token, or with another (401)."""

    def __init__(self, message: str, wrong: bool):
        super().__init__(message)
        self.wrong = wrong


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only: 127.0.0.0/8, ::1 or ``localhost``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False                       # a host name, or an address with all interfaces behind it
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def checked_token(token: str | None) -> str | None:
    """The token (None if unset or empty); refused if too short to guess at or unfit for a header."""
    if not token:
        return None
    if len(token) < MIN_TOKEN_LENGTH:
        raise InputError(f"the token has {len(token)} characters; it needs at least {MIN_TOKEN_LENGTH}",
                         hint=TOKEN_HINT)
    if not all("!" <= c <= "~" for c in token):
        raise InputError("the token may hold only printable ASCII characters without spaces", hint=TOKEN_HINT)
    return token


def check_exposure(host: str, token: str | None) -> str | None:
    """The checked token; refuses to serve on an address other machines reach without one."""
    token = checked_token(token)
    if token is None and not is_loopback(host):
        raise InputError(f"--host {host} can be reached from other machines, so the server needs a token",
                         hint=f"pass --token or set MULTIVECTOR_TOKEN, or serve on 127.0.0.1; make a token with: {MAKE_TOKEN}")
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing tells nothing about the token."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
