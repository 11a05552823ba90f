"""The one error the sandbox raises on purpose: a refusal the API turns into a 4xx."""

from __future__ import annotations


class SandboxError(Exception):
    """What Microsoft would answer with an error status; `code` is the body's error code."""

    def __init__(self, status: int, code: str, message: str, target: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target

    def __repr__(self) -> str:
        return f"SandboxError({self.status}, {self.code!r}, {self.message!r})"


def bad_request(message: str, target: str = "", code: str = "BadArgument") -> SandboxError:
    return SandboxError(400, code, message, target)


def not_found(message: str, target: str = "") -> SandboxError:
    return SandboxError(404, "EntityNotFound", message, target)


def conflict(message: str, target: str = "") -> SandboxError:
    return SandboxError(409, "Conflict", message, target)
