"""Input types shared by every API schema: text a database can store, ids it can hold."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def _storable(value: str) -> str:
    # PostgreSQL refuses NUL in text and lone surrogates in UTF-8: refuse them here, by field,
    # instead of failing in the database with a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def Text(max_length: int) -> type[str]:  # reads as a type in schemas
    return Annotated[str, Field(max_length=max_length), AfterValidator(_storable)]  # type: ignore[return-value]


RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]
