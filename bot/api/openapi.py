"""The OpenAPI document as the server behaves: every error a problem document, each status an
operation can answer listed, and the API keys as security schemes (the Authorize button of /docs)."""

from .auth import needs_admin
from .problems import PROBLEM, SAFE_METHODS

_PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "description": "an RFC 9457 problem document",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"},
                   "errors": {"type": "array", "description": "422: each invalid field",
                              "items": {"type": "object", "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                                                         "msg": {"type": "string"}}}},
                   "files": {"type": "array", "description": "422 of an upload: each file's line",
                             "items": {"$ref": "#/components/schemas/FileOut"}}},
}
_ERRORS = {400: "the request could not be read (not HTTP/1.1, or a body that is not the JSON or form declared)",
           401: "no API key, or not a valid one", 403: "not allowed", 404: "not found",
           413: "the body is larger than the server's limit", 415: "not a report file type",
           421: "without API keys, only this machine's host names (localhost, 127.0.0.1, [::1], api.allowed_hosts) "
                "are answered",
           422: "a valid request the server cannot take (the errors say which field and why)",
           429: "rate limit exceeded (Retry-After says when to try again)",
           431: "the request line and headers are larger than 16 KB",
           503: "the index is not ready (Retry-After)"}


# X-API-Key or Authorization: Bearer, either one (the Guard takes both)
SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "a key of GOVQA_API_KEYS (read) or GOVQA_ADMIN_KEYS (read and change the index)"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "the same key as Authorization: Bearer KEY"},
}


def document_errors(schema: dict, keys_enabled: bool) -> dict:
    """FastAPI's document made to say what the server does: every error an application/problem+json
    document, and each status an operation can answer listed (FastAPI's default lists 422 as
    application/json and nothing else); the API keys as security schemes, required by /v1 when
    the server has keys and optional when it has none."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    either_key = [{name: []} for name in SECURITY_SCHEMES]
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            codes = {400, 431} | ({421} if not keys_enabled else set())
            changes = method.upper() not in SAFE_METHODS
            if path.startswith("/v1/"):
                codes |= {422, 429, 503}
                op["security"] = either_key if keys_enabled else [{}, *either_key]
                if keys_enabled:
                    codes.add(401)
                if (keys_enabled and needs_admin(method.upper(), path.replace("{report_id}", "x"))) or (
                        changes and not keys_enabled):
                    codes.add(403)
                if changes:
                    codes.add(413)
            if path == "/readyz":
                codes.add(503)
            responses = op.setdefault("responses", {})
            codes |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for code in sorted(codes):
                given = responses.get(str(code), {})
                description = given.get("description")
                if not description or description == "Validation Error":
                    description = _ERRORS.get(code, "error")
                responses[str(code)] = {"description": description,
                                        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return schema

