"""Versioned URLs for the portal's static files, and how long a browser may keep them.

Every page, and every absolute icon URL, names a static file as ``/portal/static/<file>?v=<hash>``
(:func:`static_url`): the hash is the first 16 hex digits of the file's SHA-256, so a changed file
gets a new URL. An answer to such a URL, when ``v`` is the file's current hash, may be kept for a
year without revalidation (``Cache-Control: public, max-age=31536000, immutable``, RFC 8246); any
other static answer (no ``v``, as in a host page's ``<script src=".../portal.min.js">``, or a stale
``v`` during a deployment) gets a short cache (:data:`SHORT_CACHE`), so a changed file reaches
browsers within minutes (:func:`cache_control`).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from ._paths import STATIC_DIR

#: ``Cache-Control`` of a static file requested with its current version (RFC 8246 ``immutable``;
#: one year, the longest RFC 9111 §5.2.2.1 lets a cache rely on).
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
#: ``Cache-Control`` of a static file requested without (or with a stale) version: five minutes.
SHORT_CACHE = "public, max-age=300"

# (path, mtime_ns, size) -> hash: a file edited in place (development) gets a new hash.
_versions: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_version(filename: str, root: Path = STATIC_DIR) -> str | None:
    """The version of ``root / filename``: 16 lowercase hex digits of its SHA-256, or ``None``
    when there is no such file (or ``filename`` leaves ``root``). Hashed once per process and
    file state (path, modification time in ns, size)."""
    path = (root / filename).resolve()
    try:
        path.relative_to(root.resolve())
        stat = path.stat()
    except (ValueError, OSError):
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    version = _versions.get(key)
    if version is None:
        try:
            version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        except OSError:
            return None
        with _lock:
            _versions[key] = version
    return version


def static_url(filename: str) -> str:
    """The path of a portal static file with its version: ``/portal/static/<filename>?v=<hash>``
    (without ``?v=`` when the file does not exist). Needs a request or app context
    (``flask.url_for``); a Jinja global of the portal's pages."""
    from flask import url_for

    version = file_version(filename)
    if version is None:
        return url_for("portal.static", filename=filename)
    return url_for("portal.static", filename=filename, v=version)


def cache_control(filename: str | None, version: str | None) -> str:
    """The ``Cache-Control`` value for a static answer of ``filename`` asked for with ``?v=version``:
    :data:`IMMUTABLE_CACHE` when ``version`` is the file's current one, else :data:`SHORT_CACHE`."""
    if filename and version and version == file_version(filename):
        return IMMUTABLE_CACHE
    return SHORT_CACHE
