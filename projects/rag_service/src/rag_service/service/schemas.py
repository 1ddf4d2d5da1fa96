"""Request and response bodies of the HTTP API (pydantic: FastAPI validates and documents them).

Unknown fields are refused (`extra="forbid"`): a misspelt `max_token` must fail loudly with a
422 naming it, not be ignored and answered with the default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUESTION_CHARS = 2000
USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value.strip()


class AskRequest(_Strict):
    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, examples=["How do I sort a dict by value?"]
    )
    user_id: str = Field(
        min_length=1, max_length=128, pattern=USER_ID_PATTERN,
        description="A stable, pseudonymous id: it picks the user's A/B variant.",
    )  # fmt: skip
    stream: bool = Field(False, description="Stream the answer as Server-Sent Events.")
    max_tokens: int | None = Field(None, ge=1, le=256, description="Answer length in tokens.")
    top_k: int | None = Field(None, ge=1, le=10, description="Passages retrieved.")

    _question = field_validator("question")(_not_blank)


class AskResponse(BaseModel):
    request_id: str
    variant: str
    answer: str
    status: Literal["answered", "idk", "blocked"]
    citations: list[str] = Field(description="Chunk ids the answer cites that were in its prompt.")
    unknown_citations: list[str] = Field(description="Bracketed ids the model made up.")
    cache: Literal["none", "exact", "semantic"]
    guardrails: list[str]
    sources: list[str] = Field(description="Chunk ids that were in the prompt.")


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int = Field(5, ge=1, le=50)
    retrieval: Literal["dense", "hybrid"] = "hybrid"

    _query = field_validator("query")(_not_blank)


class SearchHit(BaseModel):
    id: str
    doc_id: str
    score: float
    text: str


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    top_cosine: float
    index_version: str


class FeedbackRequest(_Strict):
    request_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="From the answer.")
    rating: Literal[-1, 1] = Field(description="1: helpful, -1: not helpful.")


class FeedbackResponse(BaseModel):
    recorded: bool
    variant: str


class ErrorResponse(BaseModel):
    detail: str


class ValidationProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: 'body', then the field's path.")
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """A 422 as the service sends it (`app._validation_error`), not FastAPI's default shape."""

    detail: str = Field(description="'field: problem' for each invalid field, joined by '; '.")
    errors: list[ValidationProblem] = Field(
        default_factory=list, description="The same problems, one object each (absent when "
        "the route itself refused a value, e.g. a question over RAG_MAX_QUESTION_CHARS).",
    )  # fmt: skip
