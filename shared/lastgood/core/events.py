"""Typed inputs of the scheduled functions (Powertools parser models), parsed one way.

Every scheduled handler receives either its EventBridge Scheduler input as the whole
event (`{"source": "postgres", "slot": "…"}`) or an EventBridge event that carries
that input in `detail`. `parse_input(event, Model)` unwraps the envelope, validates
with the handler's model (Powertools `parse`) and turns a validation failure into a
`ConfigError` that names the field and what was expected. API Gateway events go
through the Powertools resolver (health) and SNS through `SNSEvent` (notifier).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import BaseModel, ValidationError, parse
from pydantic import ConfigDict, Field, StrictBool, StrictStr, field_validator

from lastgood.core.errors import ConfigError


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class BackupInput(_Input):
    """`{"source": NAME, "slot": "<aws.scheduler.scheduled-time>"}`; slot defaults to the event time."""

    source: StrictStr = Field(min_length=1)
    slot: str | None = None
    time: str | None = None  # the EventBridge envelope's time, used when no slot is given

    @field_validator("slot", "time", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 time string like 2025-01-29T02:00:00Z")
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 time like 2025-01-29T02:00:00Z") from None
        return value

    @property
    def effective_slot(self) -> str | None:
        return self.slot or self.time


class PruneInput(_Input):
    source: StrictStr | None = Field(default=None, min_length=1)
    dry_run: StrictBool = False


class RegenerateInput(_Input):
    datasets: list[StrictStr] | None = Field(default=None, min_length=1)

    @field_validator("datasets")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(value):
            raise ValueError("dataset names must be non-empty")
        return value


class VerifyInput(_Input):
    source: StrictStr | None = Field(default=None, min_length=1)
    sources: list[StrictStr] | None = None

    @property
    def names(self) -> list[str] | None:
        if self.source is not None:
            return [self.source]
        return list(self.sources) if self.sources else None


class SummaryInput(_Input):
    publish: StrictBool = True


class HealthScheduleInput(_Input):
    scheduled: bool = True
    slot: str | None = None


_EXAMPLES = {
    BackupInput: '{"source": "<configured source name>", "slot": "2025-01-29T02:00:00Z"}',
    PruneInput: '{"source": "postgres", "dry_run": true}',
    RegenerateInput: '{"datasets": ["prompts"]}',
    VerifyInput: '{"source": "postgres"}',
    SummaryInput: '{"publish": true}',
    HealthScheduleInput: '{"scheduled": true}',
}


def parse_input[M: BaseModel](event: Any, model: type[M]) -> M:
    """The handler's input from a Scheduler event or an EventBridge `detail` envelope."""
    example = _EXAMPLES.get(model, "{}")
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise ConfigError(f"event must be a JSON object like {example}, got {type(event).__name__}")
    fields = set(model.model_fields)
    detail = event.get("detail")
    # An EventBridge envelope carries the input in `detail` (unless the input is at the top level).
    body: dict[str, Any] = (
        dict(detail) if isinstance(detail, dict) and not (fields - {"time"}) & set(event) else dict(event)
    )
    if "time" in fields and "time" in event:
        body.setdefault("time", event["time"])
    try:
        return parse(event=body, model=model)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, example)) from None
    except Exception as exc:  # Powertools wraps some failures in its own error types
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            raise ConfigError(_describe(cause, example)) from None
        raise ConfigError(f"malformed event ({type(exc).__name__}): expected {example}") from None


def _describe(exc: ValidationError, example: str) -> str:
    problems = []
    for err in exc.errors()[:3]:
        field = ".".join(str(p) for p in err.get("loc", ())) or "event"
        if err.get("type") == "missing":
            problems.append(f'no "{field}"')
        else:
            problems.append(f'"{field}" {err.get("msg", "is invalid")}')
    return f"malformed event: {'; '.join(problems)}; expected {example}"


class CaptureInput(_Input):
    """`{"source": NAME}`: one PITR capture run of that source (`lastgood.pitr.capture`)."""

    source: StrictStr = Field(min_length=1)
