"""The API's request and response bodies, as pydantic models.

The routes validate the raw body themselves (see `routes`), so these models are what the OpenAPI
document shows and what the tests check responses against; the handlers build the same shapes
as plain dicts. One application's fields are `tabular_service.schema.LoanApplication`, shared
with training; this module adds the envelopes around it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from tabular_service.schema import LoanApplication

#: Where the OpenAPI document keeps LoanApplication (the app adds it to its components).
APPLICATION_REF = {"$ref": "#/components/schemas/LoanApplication"}


# ------------------------------------------------------------------ requests
def batch_model(max_batch: int) -> type[BaseModel]:
    """The batch request body, with this service's size limit built in."""
    return create_model(
        "BatchRequest",
        __config__=ConfigDict(extra="forbid"),
        applications=(list[LoanApplication], Field(min_length=1, max_length=max_batch)),
    )


def batch_request_schema(max_batch: int) -> dict[str, Any]:
    """The batch body's JSON Schema as the OpenAPI document shows it (LoanApplication by $ref)."""
    return {
        "type": "object",
        "properties": {
            "applications": {
                "type": "array",
                "items": APPLICATION_REF,
                "minItems": 1,
                "maxItems": max_batch,
            }
        },
        "required": ["applications"],
        "additionalProperties": False,
    }


# ------------------------------------------------------------------ responses
class ModelRef(BaseModel):
    name: str
    version: str
    kind: str


class ScoredApplication(BaseModel):
    probability_of_default: float = Field(ge=0, le=1)
    decision: Literal["approve", "reject"]


class Prediction(ScoredApplication):
    threshold: float
    model: ModelRef
    request_id: str


class BatchPrediction(BaseModel):
    predictions: list[ScoredApplication]
    threshold: float
    model: ModelRef
    request_id: str


class FieldError(BaseModel):
    field: str = Field(description='Dotted path of the bad field, "body" for the whole body.')
    message: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[FieldError]
    request_id: str


class ErrorBody(BaseModel):
    detail: str
    request_id: str


class NotReady(BaseModel):
    status: Literal["loading", "failed"]
    detail: str


class ModelStatus(ModelRef):
    source: str
    load_seconds: float


class Ready(BaseModel):
    status: Literal["ready"]
    model: ModelStatus


class Health(BaseModel):
    status: Literal["ok"]
