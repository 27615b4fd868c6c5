"""Passwords inside URLs: hidden in every message, found before a URL would travel or be stored."""

from __future__ import annotations

import re

MASK = "***"
# Query parameters that carry a password (libpq reads `password` and `sslpassword` from a URL).
PASSWORD_KEYS = ("password", "passwd", "pwd", "sslpassword")
_QUERY_PASSWORD = re.compile(r"(?i)([?&;](?:" + "|".join(PASSWORD_KEYS) + r")=)[^&;#]*")
# Where a PostgreSQL client finds its password without a command line seeing it.
PG_PASSWORD_HELP = "PGPASSWORD or ~/.pgpass (PGPASSFILE) of the user who runs tuning-service"


def hide(text: str) -> str:
    """``text`` with every password replaced by ``***``, whether or not it parses as a URL.

    Works on the characters, not on a parse: a malformed URL is exactly the one a
    parser cannot be trusted with. Everything between ``user:`` and the last ``@`` is
    hidden (a password may hold ``/``, ``:`` or ``?``), a non-numeric "port" after a
    host without ``@`` is hidden (``postgresql://user:secret`` typed without a host),
    and so are password query parameters.
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    at = rest.rfind("@")
    if at >= 0:
        userinfo, host = rest[:at], rest[at + 1 :]
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{MASK}@{host}" if colon else rest
    else:
        authority, slash, path = rest.partition("/")
        host, colon, port = authority.rpartition(":")
        if colon and host and port and not port.isdigit() and not authority.endswith("]"):
            rest = f"{host}:{MASK}{slash}{path}"
    return scheme + sep + _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, rest)


def has_password(text: str) -> bool:
    """Whether ``text`` carries something `hide` would hide."""
    return hide(text) != text
