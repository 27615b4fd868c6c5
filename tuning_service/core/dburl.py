"""Database URLs without a database: their forms checked, their passwords kept out of sight.

Below the store: a sweep's settings check ``--db`` and drop its password before anything connects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote

from tuning_service.core.credentials import PASSWORD_KEYS, PG_PASSWORD_HELP, hide
from tuning_service.core.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

URL_FORMS = (
    "sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE (its password in PGPASSWORD or ~/.pgpass)"
)


def parse_url(text: str) -> URL:
    """Check a database URL's form (no connection) and pick the driver we ship."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    bad = f"database URL {hide(str(text))!r} is malformed; use {URL_FORMS}"
    if not isinstance(text, str) or not text.strip():
        raise InputError(bad)
    try:
        url = make_url(text)
        port = url.port  # a non-numeric port raises ValueError (in make_url or here)
    except (ArgumentError, ValueError):
        raise InputError(bad) from None
    # From the name as written: SQLAlchemy's own getters import the dialect, and one it does not
    # know (postgres://, mysql+x://) raised NoSuchModuleError instead of being refused here.
    backend, _, driver = url.drivername.partition("+")
    shown = redact(url)
    if backend == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise InputError(
                f"database URL {shown!r} needs a file path: sqlite:///relative.db or sqlite:////abs.db"
            )
        if driver not in ("", "pysqlite"):
            raise InputError(
                f"database URL {shown!r}: unsupported SQLite driver {driver!r}; use plain sqlite:///PATH"
            )
        return url.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg", "psycopg2"):
            raise InputError(
                f"database URL {shown!r}: unsupported PostgreSQL driver {driver!r}; use postgresql://..."
            )
        if not url.database:
            raise InputError(f"database URL {shown!r} names no database; use {URL_FORMS}")
        if url.host and not _is_host_name(url.host):
            raise InputError(f"database URL {shown!r}: {url.host!r} is not a host name or address")
        if port is not None and not 0 < port < 65536:
            raise InputError(f"database URL {shown!r}: port must be 1-65535, got {port}")
        # psycopg 3 is the driver this package depends on, whatever the URL asked for.
        return url.set(drivername="postgresql+psycopg")
    raise InputError(f"database URL {shown!r}: unsupported database {backend!r}; use {URL_FORMS}")


def _is_host_name(host: str) -> bool:
    """What the resolver can take (a name lookup of ``..`` raised a UnicodeError from deep inside)."""
    if ":" in host:  # an IPv6 address, from [::1]
        return all(c in "0123456789abcdefABCDEF:.%" or c.isalnum() for c in host)
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def redact(url: URL | str) -> str:
    """The URL without its password (in the user part or the query), for messages and records.

    Never the URL as given: a string is masked character by character, parsed or not.
    """
    # Decoded first: SQLAlchemy renders a ":" or "@" it saw outside the user part as %3A / %40,
    # and `postgresql:///user:pw@host/db` (one slash too many) keeps the password there.
    text = url if isinstance(url, str) else unquote(url.render_as_string(hide_password=False))
    return hide(text)


def without_password(url: URL) -> URL:
    """``url`` minus its password and password query parameters: the form that may travel."""
    # URL.set() leaves a field given as None unchanged; the URL is a named tuple underneath.
    bare = url._replace(password=None)
    return bare.difference_update_query([k for k in bare.query if k.lower() in PASSWORD_KEYS])


def remote_db(url: str) -> str:
    """The ``--db`` a submission forwards: never with a password.

    A PostgreSQL URL travels without its password (every token holder reads the
    entrypoint in `ray job list` and the dashboard); the sweep on the head takes the
    password from PGPASSWORD or ~/.pgpass there, and says so when it has none. A
    SQLite URL names a file on the head and travels as given.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    bare = without_password(parsed)._replace(drivername="postgresql")
    if bare != parsed._replace(drivername="postgresql"):
        log.warning(
            "the database password is not sent with the submission; the sweep on the head reads it from %s there",
            PG_PASSWORD_HELP,
        )
    return bare.render_as_string(hide_password=False)
