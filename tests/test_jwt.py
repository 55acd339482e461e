"""JWT user tokens (SECURITY.md "Host authentication", the JWT lines; RFC 7519, RFC 8725).

Over real HTTP to the live stack, whose portal trusts the demo host app's RSA public key; an
in-process app (``make_app``) where the test needs other keys or algorithms (ES256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from conftest import Api, connect_sandbox
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from flask import Flask

from portal import sign_user_token
from portal._serving import ServerThread
from portal.auth import MAX_TOKEN_LENGTH, verify_user_token
from portal.demo import DEMO_APP_KEY, DemoStack
from portal.errors import AuthenticationFailed

MAX_TTL = 86400  # PORTAL_JWT_MAX_TTL's default, which the stack uses


# --------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class KeyPair:
    private: Any
    private_pem: str
    public_pem: str


def keypair(private: Any) -> KeyPair:
    return KeyPair(
        private,
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    )


@pytest.fixture(scope="module")
def host_key(stack: DemoStack) -> KeyPair:
    """The key the live portal trusts (the demo host app's)."""
    private = serialization.load_pem_private_key(stack.jwt_private_key.encode(), password=None)
    return keypair(private)


@pytest.fixture(scope="module")
def rsa_key() -> KeyPair:
    """An RSA key the live portal does not know."""
    return keypair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_key() -> KeyPair:
    return keypair(ec.generate_private_key(ec.SECP256R1()))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(user: str, **changes: Any) -> dict[str, Any]:
    """Valid claims for ``user``; a change to ``None`` removes that claim."""
    now = int(time.time())
    values: dict[str, Any] = {"sub": user, "aud": DEMO_APP_KEY, "iat": now, "exp": now + 600}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def forge(
    header: dict[str, Any],
    body: dict[str, Any],
    key: rsa.RSAPrivateKey | None = None,
    hmac_secret: bytes | None = None,
) -> str:
    """A JWS compact token built by hand, so any header (even a hostile one) can be sent."""
    signing_input = f"{segment(header)}.{segment(body)}"
    signature = b""
    if key is not None:
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    elif hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def create_session(
    stack: DemoStack, token: str, project: str = DEMO_APP_KEY, origin: str | None = ""
) -> requests.Response:
    headers = {"Origin": stack.host.url if origin == "" else origin} if origin is not None else {}
    return requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"projectId": project, "userToken": token},
        headers=headers,
        timeout=10,
    )


def assert_refused(response: Any) -> None:
    """401 with the one error shape and code ``invalid_user_token``."""
    body = response.json() if isinstance(response, requests.Response) else response.json
    assert response.status_code == 401, body
    assert set(body) == {"error", "message", "error_details"}
    assert body["error"] == "invalid_user_token"
    assert body["message"]


def client_session(app: Flask, stack: DemoStack, token: str) -> Any:
    return app.test_client().post(
        "/portal/api/v1/sessions",
        json={"projectId": DEMO_APP_KEY, "userToken": token},
        headers={"Origin": stack.host.url},
    )


# ------------------------------------------------------------------------------ valid tokens


def test_rs256_user_token_creates_a_session(stack: DemoStack, host_key: KeyPair) -> None:
    token = sign_user_token(host_key.private_pem, "alice-jwt", DEMO_APP_KEY)
    response = create_session(stack, token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_id"] == "alice-jwt" and body["origin"] == stack.host.url
    assert response.headers["Access-Control-Allow-Origin"] == stack.host.url
    session = Api(stack, "alice-jwt", body["token"])
    assert session.get("/session").json()["user_id"] == "alice-jwt"


def test_es256_user_token_creates_a_session(
    make_app: Any, stack: DemoStack, ec_key: KeyPair, rsa_key: KeyPair
) -> None:
    # Two keys configured (a rotation): either one verifies.
    app = make_app(PORTAL_JWT_PUBLIC_KEYS={DEMO_APP_KEY: [rsa_key.public_pem, ec_key.public_pem]})
    es = sign_user_token(ec_key.private_pem, "erin", DEMO_APP_KEY, algorithm="ES256")
    response = client_session(app, stack, es)
    assert response.status_code == 201, response.json
    assert response.json["user_id"] == "erin"
    rs = sign_user_token(rsa_key.private_pem, "erin", DEMO_APP_KEY)
    assert client_session(app, stack, rs).status_code == 201


def test_user_token_audience_may_be_a_list(stack: DemoStack, host_key: KeyPair) -> None:
    token = forge(
        {"alg": "RS256", "typ": "JWT"},
        claims("listed", aud=["another-service", DEMO_APP_KEY]),
        host_key.private,
    )
    assert create_session(stack, token).status_code == 201


# ---------------------------------------------------------------------------- hostile tokens


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
@pytest.mark.security("JWT user token with `alg: none`")
def test_alg_none_is_401(stack: DemoStack, alg: str) -> None:
    assert_refused(create_session(stack, forge({"alg": alg, "typ": "JWT"}, claims("mallory"))))


@pytest.mark.security("JWT user token with `alg: none`")
def test_hs256_signed_with_the_rsa_public_key_is_401(stack: DemoStack, host_key: KeyPair) -> None:
    # The algorithm-confusion attack (RFC 8725 §2.1): the public key used as an HMAC secret.
    for secret in (host_key.public_pem.encode(), host_key.public_pem.strip().encode()):
        token = forge({"alg": "HS256", "typ": "JWT"}, claims("mallory"), hmac_secret=secret)
        response = create_session(stack, token)
        assert_refused(response)
        assert "HS256" in response.json()["message"]


def test_hs256_and_none_are_refused_even_when_configured(
    make_app: Any, stack: DemoStack, rsa_key: KeyPair
) -> None:
    app = make_app(
        PORTAL_JWT_PUBLIC_KEYS={DEMO_APP_KEY: [rsa_key.public_pem]},
        PORTAL_JWT_ALGORITHMS=["RS256", "HS256", "none"],
    )
    hs = forge({"alg": "HS256"}, claims("m"), hmac_secret=rsa_key.public_pem.encode())
    assert_refused(client_session(app, stack, hs))
    assert_refused(client_session(app, stack, forge({"alg": "none"}, claims("m"))))


def test_algorithm_not_configured_is_401(make_app: Any, stack: DemoStack, ec_key: KeyPair) -> None:
    app = make_app(
        PORTAL_JWT_PUBLIC_KEYS={DEMO_APP_KEY: [ec_key.public_pem]},
        PORTAL_JWT_ALGORITHMS=["RS256"],
    )
    es = sign_user_token(ec_key.private_pem, "erin", DEMO_APP_KEY, algorithm="ES256")
    assert_refused(client_session(app, stack, es))


def test_rs256_header_over_an_ec_key_is_401(
    make_app: Any, stack: DemoStack, ec_key: KeyPair, rsa_key: KeyPair
) -> None:
    app = make_app(PORTAL_JWT_PUBLIC_KEYS={DEMO_APP_KEY: [ec_key.public_pem]})
    assert_refused(
        client_session(app, stack, sign_user_token(rsa_key.private_pem, "x", DEMO_APP_KEY))
    )


@pytest.mark.security("JWT user token with `alg: none`")
def test_expired_user_token_is_401(stack: DemoStack, host_key: KeyPair) -> None:
    now = int(time.time())
    token = forge({"alg": "RS256"}, claims("late", iat=now - 3600, exp=now - 120), host_key.private)
    response = create_session(stack, token)
    assert_refused(response)
    assert "expired" in response.json()["message"]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"exp": None}, "missing exp"),
        ({"aud": None}, "missing aud"),
        ({"aud": "another-project"}, "wrong aud"),
        ({"aud": ["another-project"]}, "wrong aud list"),
        ({"sub": None}, "missing sub"),
        ({"sub": ""}, "empty sub"),
        ({"sub": 42}, "sub not a string"),
        ({"sub": "a" * 256}, "sub too long"),
        ({"sub": "nul\x00"}, "sub with NUL"),
        ({"exp": "tomorrow"}, "exp not a number"),
        ({"exp": int(time.time()) + MAX_TTL + 3600}, "exp too far"),
        ({"iat": int(time.time()) - 60, "exp": int(time.time()) + MAX_TTL}, "exp - iat too long"),
        ({"iat": int(time.time()) + 3600}, "iat in the future"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.security("JWT user token with `alg: none`")
def test_bad_claims_are_401(
    stack: DemoStack, host_key: KeyPair, changes: dict[str, Any], why: str
) -> None:
    token = forge({"alg": "RS256", "typ": "JWT"}, claims("claimant", **changes), host_key.private)
    assert_refused(create_session(stack, token))


@pytest.mark.security("A user id with a lone surrogate")
def test_lone_surrogate_sub_is_refused_never_500(stack: DemoStack, host_key: KeyPair) -> None:
    # json.dumps writes "\\ud800" as the ASCII escape; the signature is valid, the sub is not
    # Unicode text. The token's claims are what is wrong, so it is refused like any bad `sub`
    # (401 invalid_user_token), both as a bearer and in POST /sessions.
    token = forge({"alg": "RS256"}, claims("a\ud800b"), host_key.private)
    assert_refused(create_session(stack, token))
    bearer = requests.get(
        f"{stack.portal.url}/portal/api/v1/apps",
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
        timeout=10,
    )
    assert_refused(bearer)
    assert "surrogate" in bearer.json()["message"]


def test_exp_too_far_is_401_through_sign_user_token(stack: DemoStack, host_key: KeyPair) -> None:
    token = sign_user_token(host_key.private_pem, "long", DEMO_APP_KEY, ttl=MAX_TTL + 3600)
    response = create_session(stack, token)
    assert_refused(response)
    assert str(MAX_TTL) in response.json()["message"]


@pytest.mark.security("JWT user token with `alg: none`")
def test_jwk_header_is_401(stack: DemoStack, rsa_key: KeyPair, host_key: KeyPair) -> None:
    # The attacker signs with their own key and ships its public half in the header.
    numbers = rsa_key.private.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64(numbers.e.to_bytes(3, "big")),
    }
    attacker = forge({"alg": "RS256", "jwk": jwk}, claims("mallory"), rsa_key.private)
    assert_refused(create_session(stack, attacker))
    # Even a correctly signed token is refused when its header names a key.
    legit = forge({"alg": "RS256", "jwk": jwk}, claims("mallory"), host_key.private)
    assert_refused(create_session(stack, legit))


class KeyServer:
    """A loopback "attacker" JWKS server that counts every request it receives."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.requests: list[str] = []
        app = Flask("jku-server")

        @app.route("/", defaults={"path": ""})
        @app.route("/<path:path>")
        def anything(path: str) -> Any:
            self.requests.append(path)
            return jwks

        self.server = ServerThread("127.0.0.1", 0).start(app)
        self.url = self.server.url


@pytest.fixture
def key_server(rsa_key: KeyPair) -> Iterator[KeyServer]:
    numbers = rsa_key.private.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "kid": "k1",
                "n": b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                "e": b64(numbers.e.to_bytes(3, "big")),
            }
        ]
    }
    server = KeyServer(jwks)
    yield server
    server.server.stop()


@pytest.mark.parametrize("param", ["jku", "x5u"])
@pytest.mark.security("JWT user token with `alg: none`")
def test_jku_and_x5u_headers_are_401_and_nothing_is_fetched(
    stack: DemoStack, key_server: KeyServer, rsa_key: KeyPair, param: str
) -> None:
    assert requests.get(key_server.url + "/probe", timeout=5).ok  # the server does answer
    key_server.requests.clear()
    header = {"alg": "RS256", "kid": "k1", param: f"{key_server.url}/jwks.json"}
    token = forge(header, claims("mallory"), rsa_key.private)
    assert_refused(create_session(stack, token))
    # and as a bearer on the API
    response = requests.get(
        f"{stack.portal.url}/portal/api/v1/user",
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
        timeout=10,
    )
    assert_refused(response)
    time.sleep(0.2)
    assert key_server.requests == []


@pytest.mark.parametrize(
    "extra",
    [
        {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
        {"crit": ["exp"]},
        {"typ": "at+jwt"},
    ],
    ids=["x5c", "crit", "typ"],
)
def test_other_refused_headers_are_401(
    stack: DemoStack, host_key: KeyPair, extra: dict[str, Any]
) -> None:
    token = forge({"alg": "RS256", **extra}, claims("h"), host_key.private)
    assert_refused(create_session(stack, token))


def test_token_signed_by_another_key_is_401(stack: DemoStack, rsa_key: KeyPair) -> None:
    token = sign_user_token(rsa_key.private_pem, "mallory", DEMO_APP_KEY)
    response = create_session(stack, token)
    assert_refused(response)
    assert "signature" in response.json()["message"]


def test_tampered_payload_is_401(stack: DemoStack, host_key: KeyPair) -> None:
    header, _, signature = sign_user_token(host_key.private_pem, "bob", DEMO_APP_KEY).split(".")
    token = ".".join([header, segment(claims("alice")), signature])
    assert_refused(create_session(stack, token))


@pytest.mark.security("Oversized token or header (1 MB)")
def test_oversized_user_token_is_refused_quickly(stack: DemoStack, host_key: KeyPair) -> None:
    valid = sign_user_token(host_key.private_pem, "big", DEMO_APP_KEY)
    head, payload, sig = valid.split(".")
    huge = f"{head}.{payload}{'A' * (1024 * 1024)}.{sig}"
    began = time.monotonic()
    as_bearer = requests.get(
        f"{stack.portal.url}/portal/api/v1/user",
        headers={"Authorization": f"Bearer {huge}", "Origin": stack.host.url},
        timeout=10,
    )
    assert as_bearer.status_code in (401, 431)  # the HTTP server may refuse the line first
    in_body = create_session(stack, huge)
    assert in_body.status_code in (401, 413)  # the 64 KiB body limit answers first
    just_over = f"{head}.{payload}{'A' * (MAX_TOKEN_LENGTH - len(valid) + 1)}.{sig}"
    assert len(just_over) == MAX_TOKEN_LENGTH + 1
    assert_refused(create_session(stack, just_over))
    bearer_over = requests.get(
        f"{stack.portal.url}/portal/api/v1/user",
        headers={"Authorization": f"Bearer {just_over}", "Origin": stack.host.url},
        timeout=10,
    )
    assert bearer_over.status_code == 401
    assert time.monotonic() - began < 2


@pytest.mark.parametrize(
    "token", ["", "not-a-jwt", "a.b.c", "a.b", "a.b.c.d.e", 12345, None], ids=repr
)
def test_malformed_user_tokens_are_401(stack: DemoStack, token: Any) -> None:
    response = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"projectId": DEMO_APP_KEY, "userToken": token},
        headers={"Origin": stack.host.url},
        timeout=10,
    )
    assert_refused(response)


@pytest.mark.parametrize("project", ["unknown-project", "", 7, ["demo-app-key"], None])
def test_unknown_project_is_401(stack: DemoStack, host_key: KeyPair, project: Any) -> None:
    token = sign_user_token(host_key.private_pem, "alice", DEMO_APP_KEY)
    response = requests.post(
        f"{stack.portal.url}/portal/api/v1/sessions",
        json={"projectId": project, "userToken": token},
        headers={"Origin": stack.host.url},
        timeout=10,
    )
    assert_refused(response)


def test_user_token_needs_an_allowed_origin(stack: DemoStack, host_key: KeyPair) -> None:
    token = sign_user_token(host_key.private_pem, "alice", DEMO_APP_KEY)
    evil = create_session(stack, token, origin="https://evil.example")
    assert evil.status_code == 403
    assert "Access-Control-Allow-Origin" not in evil.headers
    assert create_session(stack, token, origin=None).status_code == 403


# ---------------------------------------------------------------- JWT as bearer, and /user


def user_url(stack: DemoStack) -> str:
    return f"{stack.portal.url}/portal/api/v1/user"


def test_user_token_works_as_bearer(stack: DemoStack, host_key: KeyPair, user_id: str) -> None:
    token = sign_user_token(host_key.private_pem, user_id, DEMO_APP_KEY)
    from_page = requests.get(
        f"{stack.portal.url}/portal/api/v1/session",
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
        timeout=10,
    )
    # No theme of its own: the server's (PORTAL_THEME unset: mode auto, no stylesheet).
    unthemed = {"mode": "auto", "stylesheet": None, "name": None, "logo": None}
    assert from_page.json() == {
        "user_id": user_id,
        "origin": stack.host.url,
        "via": "jwt",
        "theme": unthemed,
    }
    from_backend = requests.get(
        f"{stack.portal.url}/portal/api/v1/session",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert from_backend.json() == {
        "user_id": user_id,
        "origin": None,
        "via": "jwt",
        "theme": unthemed,
    }
    evil = requests.get(
        user_url(stack),
        headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
        timeout=10,
    )
    assert evil.status_code == 403


@pytest.mark.parametrize("kind", ["expired", "other-key", "none", "wrong-aud"])
def test_bad_user_token_as_bearer_is_401(
    stack: DemoStack, host_key: KeyPair, rsa_key: KeyPair, kind: str
) -> None:
    token = {
        "expired": forge(
            {"alg": "RS256"}, claims("u", exp=int(time.time()) - 120), host_key.private
        ),
        "other-key": sign_user_token(rsa_key.private_pem, "u", DEMO_APP_KEY),
        "none": forge({"alg": "none"}, claims("u")),
        "wrong-aud": sign_user_token(host_key.private_pem, "u", "another-project"),
    }[kind]
    response = requests.get(
        user_url(stack),
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
        timeout=10,
    )
    assert_refused(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_user_shape_with_a_connected_account(
    stack: DemoStack, sandbox: str, host_key: KeyPair, user_id: str
) -> None:
    token = sign_user_token(host_key.private_pem, user_id, DEMO_APP_KEY)
    created = create_session(stack, token)
    assert created.status_code == 201
    api = Api(stack, user_id, created.json()["token"])
    apps = [a["name"] for a in api.get("/apps").json()["apps"]]
    assert {"sandbox", "sandbox-keys", "sandbox-basic"} <= set(apps)
    nothing = {"enabled": False, "connectedAccounts": 0, "needsReauth": False, "flows": {}}

    before = api.get("/user")
    assert before.status_code == 200
    assert before.json() == {
        "authenticated": True,
        "userId": user_id,
        "integrations": {name: nothing for name in apps},
    }

    callback, _ = connect_sandbox(api)
    assert callback.status_code == 200, callback.text[:500]
    # the JWT itself as bearer sees the same user
    after = requests.get(
        user_url(stack),
        headers={"Authorization": f"Bearer {token}", "Origin": stack.host.url},
        timeout=10,
    ).json()
    assert after["authenticated"] is True and after["userId"] == user_id
    assert set(after["integrations"]) == set(apps)
    assert after["integrations"]["sandbox"] == {
        "enabled": True,
        "connectedAccounts": 1,
        "needsReauth": False,
        "flows": {},
    }
    assert after["integrations"]["sandbox-keys"] == nothing
    assert after["integrations"]["sandbox-basic"] == nothing

    # an account whose refresh token was refused: not enabled, needs re-auth
    from portal.store import ConnectedAccount

    state = stack.portal_app.extensions["portal"]
    with state.store.session() as db:
        for account in db.query(ConnectedAccount).filter_by(user_id=user_id):
            account.status = "needs_reauth"
    stale = api.get("/user").json()["integrations"]["sandbox"]
    assert stale == {
        "enabled": False,
        "connectedAccounts": 1,
        "needsReauth": True,
        "flows": {},
    }


def test_user_without_authentication_is_401(stack: DemoStack) -> None:
    response = requests.get(user_url(stack), headers={"Origin": stack.host.url}, timeout=10)
    assert response.status_code == 401


# ------------------------------------------------------------------------- the functions


def test_verify_user_token_checks_now_and_ttl(rsa_key: KeyPair) -> None:
    token = sign_user_token(rsa_key.private_pem, "u", "p", ttl=600)
    keys = [rsa_key.public_pem]
    assert verify_user_token(token, keys, "p", ["RS256"], 3600) == "u"
    with pytest.raises(AuthenticationFailed) as info:
        verify_user_token(token, keys, "p", ["RS256"], 300)
    assert info.value.error_code == "invalid_user_token"
    with pytest.raises(AuthenticationFailed):
        verify_user_token(token, keys, "p", ["RS256"], 3600, now=int(time.time()) + 3600)
    with pytest.raises(AuthenticationFailed):
        verify_user_token(token, ["not a pem"], "p", ["RS256"], 3600)


@pytest.mark.parametrize("algorithm", ["HS256", "HS512", "none"])
def test_sign_user_token_refuses_symmetric_and_none(rsa_key: KeyPair, algorithm: str) -> None:
    with pytest.raises(ValueError):
        sign_user_token(rsa_key.private_pem, "u", "p", algorithm=algorithm)


def test_sign_user_token_claims(ec_key: KeyPair) -> None:
    token = sign_user_token(ec_key.private_pem, "ünï", "proj", ttl=120, algorithm="ES256")
    header, body = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2])
    assert header == {"alg": "ES256", "typ": "JWT"}
    assert body["sub"] == "ünï" and body["aud"] == "proj"
    assert body["exp"] - body["iat"] == 120
