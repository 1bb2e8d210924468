"""Domain exceptions that services raise without knowing about HTTP; the API maps them."""

from django.core.exceptions import ValidationError


class ConflictError(Exception):
    """The request clashes with the current state (mapped to 409, or the status given)."""

    def __init__(self, detail: str, code: str = "conflict", status: int = 409) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


def field_error(field: str, message: str, code: str = "invalid") -> ValidationError:
    """A rule violation about one input field (mapped to 400 with `attr` = the field)."""
    return ValidationError({field: ValidationError(message, code=code)})
