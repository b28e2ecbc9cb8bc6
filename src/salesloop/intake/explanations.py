"""Explanation kinds of intake decisions (DESIGN.md rule 2)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from salesloop.core.explanations import register


@register(
    "merge_suggestion",
    version=1,
    summary="Why two open leads were suggested for merge: the same company (by normalised name) and "
    "contacts whose names are alike.",
)
class MergeSuggestionExplanation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    company_key: str = Field(description="the normalised company name both leads share")
    name: str
    other_name: str
    name_similarity: float = Field(description="0..1, difflib ratio of the two names")
    same_surname: bool
