"""``/api/v1/functions``: getFunction and invokeFunction."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .. import functions as function_service
from ..errors import InvalidRequest
from ..state import current_portal
from .common import current_caller


def list_functions() -> Response:
    """``GET /api/v1/functions[?app=]``: ``{functions: [signature…]}`` of enabled apps."""
    current_caller()
    slug = request.args.get("app")
    apps = current_portal.enabled_apps()
    signatures = [
        function_service.signature(f)
        for a in apps
        if slug is None or a.slug == slug
        for f in a.functions
    ]
    return jsonify({"functions": signatures})


def get_function(name: str) -> Response:
    """``GET /api/v1/functions/<name>``: the function's signature (getFunction)."""
    current_caller()
    return jsonify(function_service.signature(function_service.find(current_portal, name)))


def invoke_function(name: str) -> tuple[Response, int]:
    """``POST /api/v1/functions/<name>/invoke`` ``{params, connectedAccountId?}``.

    :returns: the seed's shapes: 200 ``{network_code, output, next_page?}`` when executed;
        400/404 ``{error, error_details}`` when not.
    """
    caller = current_caller()
    function = function_service.find(current_portal, name)
    request.max_content_length = 1024 * 1024
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with `params`.", code="invalid_json")
    account_id = body.get("connectedAccountId")
    if account_id is not None and not isinstance(account_id, str):
        raise InvalidRequest("`connectedAccountId` must be a string.")
    status, result = function_service.invoke(
        current_portal,
        function,
        caller.user_id,
        body.get("params", {}),
        account_id,
        project=caller.project,
    )
    return jsonify(result), status


def register(bp: Blueprint) -> None:
    """Add the function routes to ``bp``."""
    bp.add_url_rule("/api/v1/functions", "api_functions", list_functions)
    bp.add_url_rule("/api/v1/functions/<name>", "api_function", get_function)
    bp.add_url_rule(
        "/api/v1/functions/<name>/invoke", "api_invoke_function", invoke_function, methods=["POST"]
    )
