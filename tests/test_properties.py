"""Hypothesis properties of the parsers that face hostile input: session tokens and connect
tickets (portal/auth.py), the proxy's path join (portal/proxy.py) and catalog loading
(portal/catalog.py). Deterministic (``derandomize=True``), about 200 examples each."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from portal.auth import TokenService
from portal.catalog import SHIPPED_DIR, App, _build_app, validate_definition
from portal.errors import AuthenticationFailed, CatalogError, InvalidConnectAttempt, InvalidRequest
from portal.proxy import build_url

#: ``PORTAL_PROPERTY_EXAMPLES=5000`` runs a deeper (still deterministic) search locally.
EXAMPLES = int(os.environ.get("PORTAL_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEY = "property-secret-key"
tokens = TokenService(KEY, session_ttl=3600, ticket_ttl=600)

#: Any text, including control characters, surrogate-free Unicode, the URL-significant ASCII
#: and percent-encoded dots and slashes.
any_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("/.%@:\\?#&=;~+ \t\r\n\x00") + ["%2e", "%2f", "%5c", "%25", ".."]),
    ),
    max_size=40,
).map("".join)


# --------------------------------------------------------------------------- tokens


@PROPERTY
@given(
    user_id=st.text(min_size=1, max_size=300),
    origin=st.text(max_size=100),
    key=st.none() | st.text(max_size=40),
)
def test_session_token_round_trips_any_user_and_origin(
    user_id: str, origin: str, key: str | None
) -> None:
    token, expires_at = tokens.issue_session(user_id, origin, key)
    claims = tokens.read_session(token)
    assert (claims.user_id, claims.origin, claims.app_key) == (user_id, origin, key)
    assert abs(claims.expires_at - expires_at) <= 1


@PROPERTY
@given(
    user_id=st.text(min_size=1, max_size=300),
    app=st.text(min_size=1, max_size=64),
    origin=st.text(max_size=100),
)
def test_ticket_round_trips_and_is_bound_to_its_app(user_id: str, app: str, origin: str) -> None:
    ticket, attempt_id, _ = tokens.issue_ticket(user_id, app, origin, origin, project="app-key")
    claims = tokens.read_ticket(ticket, app)
    assert (claims.user_id, claims.app, claims.attempt_id) == (user_id, app, attempt_id)
    assert (claims.host_origin, claims.opener_origin) == (origin, origin)
    assert claims.project == "app-key"
    with pytest.raises(InvalidConnectAttempt):
        tokens.read_ticket(ticket, app + "x")


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    """``token`` with one hostile change: bit flips, truncation, appended or inserted bytes, a
    swapped part, or (elsewhere) a token signed with another key."""
    kind = draw(st.sampled_from(["flip", "truncate", "append", "insert", "swap", "replace"]))
    if kind == "flip":
        raw = bytearray(token.encode())
        for _ in range(draw(st.integers(1, 3))):
            index = draw(st.integers(0, len(raw) - 1))
            raw[index] ^= 1 << draw(st.integers(0, 7))
        return raw.decode("latin-1")
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    if kind == "append":
        return token + draw(st.text(min_size=1, max_size=20))
    if kind == "insert":
        index = draw(st.integers(0, len(token)))
        return token[:index] + draw(st.text(min_size=1, max_size=5)) + token[index:]
    if kind == "swap":
        parts = token.split(".")
        draw(st.randoms()).shuffle(parts)
        return ".".join(parts)
    index = draw(st.integers(0, len(token) - 1))
    return token[:index] + draw(st.characters()) + token[index + 1 :]


SESSION = tokens.issue_session("user-1", "https://host.example", "app-key")[0]
TICKET = tokens.issue_ticket(
    "user-1", "sandbox", "https://host.example", "https://host.example", project="app-key"
)[0]
SESSION_CLAIMS = tokens.read_session(SESSION)
TICKET_CLAIMS = tokens.read_ticket(TICKET, "sandbox")


@PROPERTY
@given(mutated=mutations(SESSION))
@example(mutated=SESSION + "=")
@example(mutated=SESSION[:-1])
@example(mutated="." + SESSION)
@example(mutated="x" * 5000)
def test_mutated_session_token_is_refused_with_authentication_failed(mutated: str) -> None:
    """Refused with the documented 401 error, never another exception. (A change that does not
    change what the token decodes to, e.g. spare base64 bits, reads as the same claims.)"""
    try:
        claims = tokens.read_session(mutated)
    except AuthenticationFailed as exc:
        assert exc.code == 401 and exc.error_code in ("invalid_token", "token_expired")
    else:
        assert claims == SESSION_CLAIMS


@PROPERTY
@given(mutated=mutations(TICKET))
@example(mutated="")
@example(mutated=TICKET + "x")
def test_mutated_ticket_is_refused_with_invalid_connect_attempt(mutated: str) -> None:
    try:
        claims = tokens.read_ticket(mutated, "sandbox")
    except InvalidConnectAttempt as exc:
        assert exc.code == 400
    else:
        assert claims == TICKET_CLAIMS


@PROPERTY
@given(user_id=st.text(min_size=1, max_size=50), other_key=st.text(min_size=1, max_size=40))
def test_token_signed_with_another_key_is_refused(user_id: str, other_key: str) -> None:
    other = TokenService(other_key if other_key != KEY else KEY + "!", 3600, 600)
    session = other.issue_session(user_id, "https://host.example", None)[0]
    ticket = other.issue_ticket(
        user_id, "sandbox", "https://h.example", "https://h.example", project="app-key"
    )[0]
    with pytest.raises(AuthenticationFailed):
        tokens.read_session(session)
    with pytest.raises(InvalidConnectAttempt):
        tokens.read_ticket(ticket, "sandbox")
    # Nor is a session token a ticket, or a ticket a session token (one salt per purpose).
    with pytest.raises(InvalidConnectAttempt):
        tokens.read_ticket(SESSION, "sandbox")
    with pytest.raises(AuthenticationFailed):
        tokens.read_session(TICKET)


# --------------------------------------------------------------------------- proxy path join

BASES = [
    "http://127.0.0.1:5002/api",
    "https://api.example.com",
    "https://api.example.com/v1/",
    "https://tenant.example.com:8443/rest/api/3",
]
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _check_join(base: str, path: str) -> None:
    try:
        url = build_url(base, path)
    except InvalidRequest as exc:
        assert exc.code == 400 and exc.error_code == "invalid_path"
        return
    parts, base_parts = urlsplit(url), urlsplit(base)
    assert (parts.scheme, parts.netloc) == (base_parts.scheme, base_parts.netloc), url
    prefix = base_parts.path.rstrip("/") + "/"
    assert parts.path.startswith(prefix), url
    assert not parts.query and not parts.fragment, url
    assert not _CONTROL.search(url), url
    assert "\\" not in url and "@" not in url.split("//", 1)[1]
    decoded = parts.path
    for _ in range(4):  # however often it is decoded on the way, no segment climbs out
        decoded = unquote(decoded)
        assert not {".", ".."} & set(decoded[len(prefix) :].split("/")), url
        assert decoded.startswith(prefix)


@pytest.mark.security("Path that is absolute or escapes the base URL")
@PROPERTY
@given(base=st.sampled_from(BASES), path=any_text)
@example(base=BASES[0], path="//evil.example/x")
@example(base=BASES[0], path="http://169.254.169.254/")
@example(base=BASES[0], path="@evil.example")
@example(base=BASES[0], path="%2e%2e/%2e%2e/admin")
@example(base=BASES[0], path="%252e%252e%252f")
@example(base=BASES[0], path="a/%0d%0aHost: evil")
@example(base=BASES[2], path="contacts/../../x")
@example(base=BASES[2], path="contacts?x=1#frag")
def test_proxy_join_is_refused_or_stays_under_the_base(base: str, path: str) -> None:
    _check_join(base, path)


@PROPERTY
@given(
    base=st.sampled_from(BASES),
    segments=st.lists(
        st.sampled_from(
            ["contacts", "..", ".", "%2e%2e", "%2E.", ".%2e", "%252e%252e", "", "a%2fb", "x%00"]
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_proxy_join_of_dot_segment_paths(base: str, segments: list[str]) -> None:
    """Paths built from dot-segments in every encoding: the same property, found faster."""
    _check_join(base, "/".join(segments))


@PROPERTY
@given(
    base=st.sampled_from(BASES),
    path=st.from_regex(r"[a-z0-9_-]{1,12}(/[a-z0-9_.-]{1,12}){0,3}", fullmatch=True),
)
def test_proxy_join_keeps_ordinary_paths(base: str, path: str) -> None:
    """An ordinary relative path is not refused (unless it has a dot segment) and lands
    verbatim under the base."""
    if any(s in (".", "..") for s in path.split("/")):
        with pytest.raises(InvalidRequest):
            build_url(base, path)
        return
    assert build_url(base, path) == base.rstrip("/") + "/" + path


# --------------------------------------------------------------------------- catalog loading


def _shipped() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted(SHIPPED_DIR.glob("*.yaml"))
    return [(path, yaml.safe_load(path.read_text("utf-8"))) for path in files]


SHIPPED = _shipped()
SETTINGS = {"base_url": "https://sandbox.example", "client_id": "id", "client_secret": "secret"}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
#: Values a URL, slug or header field may be mutated into.
hostile_strings = st.sampled_from(
    [
        "",
        "http://",
        "{base_url}",
        "{nope}/x",
        "https://{sub}.example.com",
        "javascript:alert(1)",
        "//evil.example",
        "http://[::1",
        "https://x.example:99999/",
        "Authorization",
        "a" * 300,
        "\u0000",
        "{base_url}/../x",
    ]
)


@st.composite
def mutated_definitions(draw: st.DrawFn) -> tuple[Path, dict[str, Any]]:
    """A shipped definition with 1-3 mutations at random places: a key deleted, a value
    replaced (by any JSON value or a hostile string), or a key added."""
    path, original = draw(st.sampled_from(SHIPPED))
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        while True:
            children = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
            if not children:
                break
            child = draw(st.sampled_from(children))
            value = node[child]
            if isinstance(value, (dict, list)) and value and draw(st.booleans()):
                node = value
                continue
            action = draw(st.sampled_from(["delete", "replace", "hostile", "add"]))
            if action == "delete":
                del node[child]
            elif action == "replace":
                node[child] = draw(json_values)
            elif action == "hostile":
                node[child] = draw(hostile_strings)
            elif isinstance(node, dict):
                node[draw(any_text)] = draw(json_values)
            else:
                node.append(draw(json_values))
            break
    return path, data


@PROPERTY
@given(case=mutated_definitions())
def test_mutated_definition_is_a_catalog_error_naming_the_file_or_a_valid_app(
    case: tuple[Path, dict[str, Any]],
) -> None:
    path, data = case
    problems = validate_definition(data, path)
    if problems:
        assert all(p.startswith(f"{path}: ") for p in problems), problems
        return
    try:
        app = _build_app(path, data, SETTINGS, {})
    except CatalogError as exc:
        assert str(path) in str(exc) or data["slug"] in str(exc), str(exc)
        return
    assert isinstance(app, App)
    assert app.slug == data["slug"]
    for url in (app.api_base_url,):
        if url:
            # A URL may start with a placeholder whose value is itself a URL, read from the
            # token or identity response (Zoho's {api_domain}): absolute once substituted.
            resolved = re.sub(r"^\{[a-z][a-z0-9_]*\}", "https://x.example", url)
            assert urlsplit(resolved).scheme in ("http", "https")


def test_every_shipped_definition_is_valid() -> None:
    """The property's starting points are valid definitions (so mutations are what fails)."""
    for path, data in SHIPPED:
        assert validate_definition(data, path) == []
        assert isinstance(_build_app(path, data, SETTINGS, {}), App)
