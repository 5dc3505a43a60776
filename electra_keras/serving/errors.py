"""The error type shared by the serving registry, servers and clients.

Codes are gRPC status code names (`"INVALID_ARGUMENT"`, `"NOT_FOUND"`...); the
REST server turns them into HTTP statuses as TF Serving's HTTP server does.
"""

from __future__ import annotations

# TF Serving's canonical-code -> HTTP status table (ToHTTPStatusCode in
# model_servers/http_server.cc): INVALID_ARGUMENT, FAILED_PRECONDITION and
# OUT_OF_RANGE all answer 400.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A request failed; `code` says how, as a gRPC status code name.

    Args:
        code: gRPC status code name, e.g. `"INVALID_ARGUMENT"`.
        message: what went wrong, for the caller.
        http_status: the HTTP status (default: from `code`).
    """

    def __init__(self, code: str, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status or HTTP_STATUS.get(code, 500)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid_argument(message: str) -> ServingError:
    """An INVALID_ARGUMENT error (HTTP 400).

    Args:
        message: what is wrong with the request.
    """
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    """A NOT_FOUND error (HTTP 404).

    Args:
        message: what was not found.
    """
    return ServingError("NOT_FOUND", message)
