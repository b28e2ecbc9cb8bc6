"""The explanation kinds of evidence OCR (issue 6 item 3): why a page looks signed or not, and why a
signature page's company was flagged as not the lead's customer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from salesloop.core.explanations import register


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignedReason(_Strict):
    cue: Literal["red_seal", "signature_filled", "date_filled", "date_blank", "signature_blank"]
    points: int = Field(description="what the cue adds to the verdict's points (negative: against)")
    page: int = Field(ge=1, description="the page (1 for an image) the cue was seen on")
    lines: list[int] = Field(description="indexes into the stored OCR lines behind the cue")
    detail: str = Field(description="the cue in words, e.g. the text next to 签字 or the seal's size")


@register(
    "evidence_signed",
    version=1,
    summary="Whether a signature/seal page looks signed: text cues (签字/盖章 lines with content next "
    "to them, a filled date) and an image cue (a round blob of strongly red pixels: a seal), each "
    "with its points; signed when the points reach the threshold.",
)
class SignedExplanation(_Strict):
    signed: bool
    points: int
    threshold: int
    reasons: list[SignedReason]
    seal: dict | None = Field(  # type: ignore[type-arg]
        description="the red blob measured on the page with the best one: box, pixels, aspect, fill, "
        "corner share, side share (docs/ocr.md)"
    )


class CompanyRead(_Strict):
    name: str
    similarity: float = Field(ge=0, le=1)
    line: int


@register(
    "evidence_company_mismatch",
    version=1,
    summary="A signature page whose OCR'd company names all differ from the lead's customer: each name "
    "read with its similarity (normalised: legal form, brackets and spaces removed) to the customer.",
)
class CompanyMismatchExplanation(_Strict):
    mismatch: bool
    customer: str
    threshold: float
    companies: list[CompanyRead]
    message: str = Field(description="the finding in words, naming both companies")
