"""/gate and /gate/webhook over HTTP, and what they share with /preview: the bearer token and
JSON in and out."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sli_provider.config import Secret
from sli_provider.service.gate import CannotJudge, Gate
from sli_provider.service.gate_request import fields_of_body, request_from_fields
from sli_provider.service.preview import PreviewError

log = logging.getLogger(__name__)


def bearer_ok(request: web.Request, token: Secret | None) -> bool:
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.reveal().encode()
    )


def unauthorized(realm: str) -> web.Response:
    return web.json_response(
        {"error": "missing or wrong bearer token"},
        status=401,
        headers={"WWW-Authenticate": f'Bearer realm="sli-provider {realm}"'},
    )


def json_answer(document: Any, status: int = 200) -> web.Response:
    return web.json_response(
        document, status=status, dumps=lambda o: json.dumps(o, allow_nan=False)
    )


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreviewError([f"body is not JSON: {exc}"]) from None


def gate_handler(
    gate_of: Callable[[web.Request], Gate],
    token_of: Callable[[web.Request], Secret | None],
    *,
    webhook: bool,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``/gate``: 200 with the verdict; a run that cannot be judged answers 422, 502 or 504.
    ``/gate/webhook`` (``webhook``), for callers that read only the status (Flagger: above 202 is
    a failure): 200 pass or warning, 412 fail (and warning with ``strict``); the same body."""

    async def handle(request: web.Request) -> web.Response:
        if not bearer_ok(request, token_of(request)):
            return unauthorized("gate")
        try:
            if request.method == "POST":
                gate_request = request_from_fields(fields_of_body(await json_body(request)))
            else:
                gate_request = request_from_fields(request.query)
        except PreviewError as exc:
            return web.json_response({"error": str(exc), "problems": exc.problems}, status=400)
        try:
            answer = await gate_of(request).judge(gate_request)
        except CannotJudge as exc:
            log.warning("gate: cannot judge: %s", exc)
            return json_answer(exc.document(), exc.status)
        result = answer.verdict.result
        failed = result == "fail" or (gate_request.strict and result == "warning")
        return json_answer(answer.document, 412 if webhook and failed else 200)

    return handle
