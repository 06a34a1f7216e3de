"""What can go wrong talking to the API, each with the exit code the command line gives it."""

from enum import IntEnum

from scheduler_client.models import Problem


class ExitCode(IntEnum):
    """The `scheduler` command's exit codes (docs/cli.md lists them)."""

    OK = 0
    # Anything else: the receiver could not listen, an interrupted follow, a bug.
    FAILED = 1
    # A wrong option or argument; nothing was sent.
    USAGE = 2
    # The API answered 404: no job with that id.
    NOT_FOUND = 3
    # The API refused the request (any other 4xx: invalid, conflicting state, bad key).
    REFUSED = 4
    # The API answered 5xx, could not be reached, or answered something that is not the API.
    UNAVAILABLE = 5


class SchedulerError(Exception):
    """Any failure of a call to the API."""

    exit_code: ExitCode = ExitCode.FAILED


class Unreachable(SchedulerError):
    """No answer: the connection failed or timed out (nothing is known of the request's fate)."""

    exit_code = ExitCode.UNAVAILABLE


class UnexpectedAnswer(SchedulerError):
    """A 2xx answer that is not what the API documents (a proxy's page, another service)."""

    exit_code = ExitCode.UNAVAILABLE


class ApiError(SchedulerError):
    """The API answered with an error status; `problem` is its problem document, if it sent
    one (the Functions host answers a missing or wrong key with a bare 401)."""

    exit_code = ExitCode.REFUSED

    def __init__(self, status: int, problem: Problem | None, body: bytes) -> None:
        self.status = status
        self.problem = problem
        self.body = body
        super().__init__(self.summary())

    def summary(self) -> str:
        if self.problem is not None:
            return f"{self.status} {self.problem.title}: {self.problem.detail}"
        if self.status == 401:
            return (
                "401: no key, or a key of too low a level "
                "(set SCHEDULER_KEY or --key to a function key of the app)"
            )
        return f"{self.status}: the API answered without a problem document"


class NotFound(ApiError):
    exit_code = ExitCode.NOT_FOUND


class ServerError(ApiError):
    exit_code = ExitCode.UNAVAILABLE


def api_error(status: int, problem: Problem | None, body: bytes) -> ApiError:
    """The error class for an answer's status."""
    if status == 404:
        return NotFound(status, problem, body)
    if status >= 500:
        return ServerError(status, problem, body)
    return ApiError(status, problem, body)
