"""The raw loan application: one typed record, the single source of truth for the inputs.

Training reads the Lending Club table through this schema (`data.load_loans` checks every row
against it) and the service validates requests with the same class, so a field added, renamed
or re-ranged here changes both sides at once. Ranges are wider than anything in the data (the
data's own min and max are in the comments) but narrow enough to reject nonsense such as a
negative income or an interest rate of 500 %: such a request gets a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Term = Literal["term_36", "term_60"]
SubGrade = Literal[
    "A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5",
    "D1", "D2", "D3", "D4", "D5", "E1", "E2", "E3", "E4", "E5", "F1", "F2", "F3", "F4", "F5",
    "G1", "G2", "G3", "G4", "G5",
]  # fmt: skip
State = Literal[
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "ID", "IL", "IN",
    "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH",
    "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA",
    "VT", "WA", "WI", "WV", "WY",
]  # fmt: skip
Verification = Literal["Not_Verified", "Source_Verified", "Verified"]
EmploymentLength = Literal[
    "emp_lt_1", "emp_1", "emp_2", "emp_3", "emp_4", "emp_5", "emp_6", "emp_7", "emp_8", "emp_9",
    "emp_ge_10", "emp_unk",
]  # fmt: skip

Count = Annotated[int, Field(ge=0, le=500)]
Money = Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)]

EXAMPLE_APPLICATION: dict[str, object] = {
    "funded_amnt": 16100,
    "term": "term_36",
    "int_rate": 13.99,
    "sub_grade": "C4",
    "addr_state": "CT",
    "verification_status": "Not_Verified",
    "annual_inc": 35000.0,
    "emp_length": "emp_5",
    "delinq_2yrs": 0,
    "inq_last_6mths": 0,
    "revol_util": 67.4,
    "acc_now_delinq": 0,
    "open_il_6m": 1,
    "open_il_12m": 0,
    "open_il_24m": 0,
    "total_bal_il": 1099,
    "all_util": 48,
    "inq_fi": 0,
    "inq_last_12m": 3,
    "delinq_amnt": 0,
    "num_il_tl": 3,
    "total_il_high_credit_limit": 13193,
}


class LoanApplication(BaseModel):
    """One applicant as the lender sees it at origination (nothing known only afterwards)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_APPLICATION]}
    )

    funded_amnt: float = Field(
        gt=0,
        le=100_000,
        allow_inf_nan=False,
        description="Loan amount in USD (data: 1,000-40,000).",
    )
    term: Term = Field(description="Repayment term in months.")
    int_rate: float = Field(
        gt=0, le=60, allow_inf_nan=False, description="Interest rate in percent (data: 5.3-29)."
    )
    sub_grade: SubGrade = Field(description="Lending Club's own risk grade, A1 best to G5 worst.")
    addr_state: State = Field(description="US state of the borrower's address.")
    verification_status: Verification = Field(description="Whether the income was verified.")
    annual_inc: Money = Field(description="Self-reported annual income in USD (data: 0-960,000).")
    emp_length: EmploymentLength = Field(description="Years in the current job.")
    delinq_2yrs: Count = Field(description="Delinquencies of 30+ days in the past 2 years.")
    inq_last_6mths: Count = Field(description="Credit inquiries in the past 6 months.")
    revol_util: Percent = Field(
        description="Revolving credit utilisation in percent (data: 0-144)."
    )
    acc_now_delinq: Count = Field(description="Accounts now delinquent.")
    open_il_6m: Count = Field(description="Instalment accounts opened in the past 6 months.")
    open_il_12m: Count = Field(description="Instalment accounts opened in the past 12 months.")
    open_il_24m: Count = Field(description="Instalment accounts opened in the past 24 months.")
    total_bal_il: Money = Field(description="Balance of all instalment accounts in USD.")
    all_util: Percent = Field(description="Balance to credit limit on all trades, in percent.")
    inq_fi: Count = Field(description="Personal finance inquiries.")
    inq_last_12m: Count = Field(description="Credit inquiries in the past 12 months.")
    delinq_amnt: Money = Field(description="Past-due amount owed on delinquent accounts, USD.")
    num_il_tl: Count = Field(description="Number of instalment accounts.")
    total_il_high_credit_limit: Money = Field(description="Total instalment credit limit, USD.")


def _is_categorical(name: str) -> bool:
    return get_args(LoanApplication.model_fields[name].annotation) != ()


#: Field names in schema order, split by kind. The feature encoder and the data loader use these.
FIELDS: tuple[str, ...] = tuple(LoanApplication.model_fields)
CATEGORICAL: tuple[str, ...] = tuple(f for f in FIELDS if _is_categorical(f))
NUMERIC: tuple[str, ...] = tuple(f for f in FIELDS if not _is_categorical(f))


def categories(name: str) -> tuple[str, ...]:
    """The allowed values of a categorical field, in the schema's order."""
    return tuple(get_args(LoanApplication.model_fields[name].annotation))


TARGET = "Class"
#: The label value that means the loan defaulted: the positive class everywhere.
POSITIVE_LABEL = "bad"
