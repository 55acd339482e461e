"""``/api/v1/proxy/<app>/<path>``: Paragon's ``request(integrationType, path, options)``."""

from __future__ import annotations

from flask import Blueprint, Response, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from .. import proxy
from ..errors import PayloadTooLarge, ResourceNotFound
from ..state import current_portal
from .common import current_caller

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
#: Query parameters the portal reads itself and never forwards.
OWN_PARAMS = frozenset({"connectedAccountId", "user_id"})


def proxy_request(app: str, path: str) -> Response:
    """Send the request to the app's API with the end user's credentials; stream the answer.

    The account is ``?connectedAccountId=`` when given, else the user's most recently modified
    account of the app (:func:`portal.proxy.owned_account`: only the caller's project's and
    user's rows of this app). Upstream status and body come back as they are.
    """
    caller = current_caller()
    definition = current_portal.app(app)
    if definition is None:
        raise ResourceNotFound(f"No app called {app!r}.", code="unknown_app")
    account_id = request.args.get("connectedAccountId")
    account = proxy.owned_account(
        current_portal, caller.project, caller.user_id, definition.slug, account_id
    )
    if account is None:
        if account_id is None:
            raise ResourceNotFound(
                f"No {definition.title} account is connected.", code="not_connected"
            )
        raise ResourceNotFound("No such connected account.")
    limit = int(current_portal.config["PORTAL_PROXY_MAX_BODY"])
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("The request body is too large.")
    # A body without Content-Length (chunked) is read up to one byte past the limit: Werkzeug
    # stops reading at max_content_length without raising, which would truncate it silently.
    request.max_content_length = limit + 1
    body = request.get_data(cache=False) if request.method not in ("GET", "HEAD") else None
    if body is not None and len(body) > limit:
        raise PayloadTooLarge("The request body is too large.")
    query = [(k, v) for k, v in request.args.items(multi=True) if k not in OWN_PARAMS]
    result = proxy.forward(
        current_portal,
        definition,
        account.id,
        method=request.method,
        path=path,
        query=query,
        headers=request.headers,  # forward() picks the few it passes on: no copy
        body=body,
        account=account,
        owner=(caller.project, caller.user_id),
    )
    # No stream_with_context: the body's generator needs nothing of the request.
    return Response(result.body, status=result.status, headers=result.headers)


class AnyPathConverter(PathConverter):
    """Like ``path`` but takes *anything*, leading slashes and control characters included, so
    hostile paths reach :func:`portal.proxy.build_url` and get its JSON 400 rather than a
    router 404 or a slash-merging 308."""

    regex = r"[\s\S]+"
    part_isolating = False


def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("portal_anypath", AnyPathConverter)


def register(bp: Blueprint) -> None:
    """Add the proxy route to ``bp``."""
    bp.record_once(_add_converter)
    bp.add_url_rule(
        "/api/v1/proxy/<app>/<portal_anypath:path>",
        "api_proxy",
        proxy_request,
        methods=METHODS,
        merge_slashes=False,
    )
