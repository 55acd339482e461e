"""What the end user is told when a connect attempt fails: one plain-language sentence per
error code, in one place.

Providers report failures on the redirect with the codes of RFC 6749 §4.1.2.1 (``access_denied``,
``invalid_scope``, ``server_error``, ``temporarily_unavailable``…) and an ``error_description``
written for developers ("The resource owner or authorization server denied the request"); the
portal has codes of its own (``invalid_issuer``, RFC 9207 §2.4; ``invalid_nonce``, OpenID Connect
Core §3.1.3.7; ``upstream_refused``, ``expired``). The popup's result page, the redirect-mode
page and the app page show the sentence; the code itself stays in the attempt record and the
host page's ``error`` event payload (``type``), unchanged.
"""

from __future__ import annotations

from .i18n import N_
from .i18n import gettext as _

#: Code -> sentence (English; translated when it is shown); ``{app}`` is the app's title.
MESSAGES: dict[str, str] = {
    "access_denied": N_("You chose not to connect {app}."),
    "invalid_scope": N_("{app} did not allow the access this app asks for."),
    "unauthorized_client": N_("{app} does not let this app connect accounts right now."),
    "unsupported_response_type": N_("{app} does not let this app connect accounts right now."),
    "invalid_request": N_("{app} could not start the sign-in. Please try again."),
    "server_error": N_("{app} reported a problem. Please try again."),
    "temporarily_unavailable": N_(
        "{app} is not available right now. Please try again in a moment."
    ),
    "invalid_issuer": N_(
        "The sign-in answer did not come from {app}, so it was not used. Please try again."
    ),
    "invalid_nonce": N_(
        "The sign-in answer was not meant for this connection, so it was not used. "
        "Please try again."
    ),
    "upstream_refused": N_(
        "{app} was not contacted: the host of this account points to a private network address."
    ),
    "expired": N_("The connection took too long and expired. Please try again."),
    "window_closed": N_("The window was closed before the connection finished."),
    # The token endpoint's codes (RFC 6749 §5.2), met when the callback exchanges the code.
    "invalid_grant": N_(
        "{app} did not accept this sign-in: it may have expired or been used already. "
        "Please try again."
    ),
    "invalid_client": N_("{app} does not let this app connect accounts right now."),
    "unsupported_grant_type": N_("{app} does not let this app connect accounts right now."),
}

#: Provider codes whose ``error_description`` is worth showing (after "{app} reported a
#: problem:"); for the others the sentence says all the user can act on.
_DESCRIBED = {"server_error"}

#: Portal codes whose own message is replaced by the sentence. Other portal failures
#: (``temporarily_unavailable`` "did not answer in time", ``invalid_response``…) already carry a
#: specific message written for people and keep it.
_PORTAL_MAPPED = {
    "invalid_issuer",
    "invalid_nonce",
    "upstream_refused",
    "expired",
    # The token endpoint's error_description is written for developers, like the redirect's.
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
}


def provider_error_message(code: str, app_title: str, description: str | None = None) -> str:
    """The sentence for an error a provider reported on the redirect (RFC 6749 §4.1.2.1).

    ``code`` is the ``error`` parameter, ``description`` its ``error_description`` (untrusted
    text: templates escape it; cut to 300 characters here). Known codes get their sentence;
    ``server_error`` and unknown codes "<App> reported a problem: <description>" when there is a
    description. Never raises."""
    detail = " ".join((description or "").split())[:300]
    if code in MESSAGES and (code not in _DESCRIBED or not detail):
        return _(MESSAGES[code]).format(app=app_title)
    if detail:
        return _("%(app)s reported a problem: %(detail)s", app=app_title, detail=detail)
    return _("%(app)s reported a problem. Please try again.", app=app_title)


def failure_message(code: str, app_title: str) -> str:
    """The sentence for ``code`` alone, for a failure recorded without a sentence of its own
    (the attempt record that the app page's poll reads, an error page): the sentence of
    :data:`MESSAGES`, or "Connecting <App> did not work. Please try again." for any other code.
    Never raises."""
    if code in MESSAGES:
        return _(MESSAGES[code]).format(app=app_title)
    return _("Connecting %(app)s did not work. Please try again.", app=app_title)


def portal_error_message(code: str, app_title: str, message: str) -> str:
    """The sentence for a failure the portal itself detected: the mapped sentence for
    ``invalid_issuer``, ``invalid_nonce``, ``upstream_refused``, ``expired`` and the token
    endpoint's ``invalid_grant``, ``invalid_client``, ``unauthorized_client`` and
    ``unsupported_grant_type`` (RFC 6749 §5.2, whose ``error_description`` is developer text),
    else ``message`` (already written for people). Never raises."""
    if code in _PORTAL_MAPPED:
        return _(MESSAGES[code]).format(app=app_title)
    return message
