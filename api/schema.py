"""What the OpenAPI schema says beyond what drf-spectacular reads from the views: the
bearer token, the problem details every error is, and links from a created change to
what can be done with it next (Schemathesis follows them in its stateful tests)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension

PROBLEM_TYPE = "application/problem+json"
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "urn:portal:problem:conflict"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Each field's messages, for a 400.",
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}
ERRORS = {
    "400": "The request is not valid (each field's messages under errors).",
    "401": "No token or session, or a token that is unknown, revoked or expired.",
    "403": "Seen but not allowed: a role, a scope, separation of duties (audited).",
    "404": "No such object, or one you may not see (the same answer, audited).",
    "406": "Only JSON is offered.",
    "429": "Over the token's rate limit; Retry-After says when to try again.",
}
WRITE_ERRORS = {
    "409": "The object changed since you read it (a stale version) or is in another state.",
    "415": "Send application/json.",
}
CHANGE_LINKS = {
    "GetChange": "changes_retrieve",
    "UpdateChange": "changes_update",
    "SubmitChange": "changes_submit",
    "CancelChange": "changes_cancel",
}


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from your Preferences page: `Bearer cmp_…`.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.PortalSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


def _problem_response(description: str) -> dict:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def postprocess(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            errors = dict(ERRORS)
            if method in ("post", "patch", "put", "delete"):
                errors.update(WRITE_ERRORS)
            for code, description in errors.items():
                responses.setdefault(code, _problem_response(description))
            for code, response in responses.items():
                if code >= "400" and "content" not in response:
                    # An error a view documents with a description only (a GET's 409).
                    response.update(_problem_response(response.get("description", "")))
            closed = responses.get("423")
            if closed and "content" in closed:
                # The gate's closed answer is itself a problem.
                closed["content"] = {PROBLEM_TYPE: next(iter(closed["content"].values()))}
            if operation.get("operationId") == "changes_create":
                responses["201"]["links"] = {
                    name: {"operationId": target, "parameters": {"id": "$response.body#/id"}}
                    for name, target in CHANGE_LINKS.items()
                }
    return result
