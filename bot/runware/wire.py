"""The wire base models: camelCase on the wire, snake_case in Python; strict requests, lenient responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

_SPECIAL_WORDS = {"uuid": "UUID", "url": "URL"}


def wire_name(name: str) -> str:
    """snake_case → Runware's camelCase, keeping UUID/URL upper-case (task_uuid → taskUUID)."""
    first, *rest = name.split("_")
    return first + "".join(_SPECIAL_WORDS.get(part, part.capitalize()) for part in rest)


class WireRequest(BaseModel):
    """Base of every request: strict types, unknown keys refused, camelCase aliases."""

    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _wire_keys(cls, data: Any) -> Any:
        """Validate Python names as wire names, so every error names the parameter as the API spells it."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {(fields[key].alias or key) if key in fields else key: value for key, value in data.items()}

    def to_wire(self) -> dict[str, Any]:
        """The JSON object to send: aliases, and no key that was left unset (None)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class WireResponse(BaseModel):
    """Base of every response: lenient, unknown keys kept (Runware adds fields without notice)."""

    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, extra="allow")
