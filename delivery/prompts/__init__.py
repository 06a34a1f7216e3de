"""The prompt types a job can run, and the table that dispatches on `prompt_type`."""

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from delivery.prompts.context import FiringContext, PayloadRules
from delivery.prompts.http_call import HttpCallPayload, run_http_call
from delivery.prompts.log_append import LogAppendPayload, run_log_append
from scheduling.models import FLOW_KEY_PATTERN


@dataclass(frozen=True)
class PromptType:
    payload_model: type[BaseModel]
    run: Callable[[Any, FiringContext], BaseModel]


PROMPT_TYPES: Mapping[str, PromptType] = {
    "http.call": PromptType(HttpCallPayload, run_http_call),
    "log.append": PromptType(LogAppendPayload, run_log_append),
}


class UnknownPromptType(ValueError):
    def __init__(self, prompt_type: str) -> None:
        known = ", ".join(sorted(PROMPT_TYPES))
        super().__init__(f"unknown prompt_type {prompt_type!r}; known types: {known}")


def parse_payload(prompt_type: str, payload: Mapping[str, Any], rules: PayloadRules) -> BaseModel:
    """The payload as its type's model; raises UnknownPromptType or pydantic's ValidationError."""
    if prompt_type not in PROMPT_TYPES:
        raise UnknownPromptType(prompt_type)
    model = PROMPT_TYPES[prompt_type].payload_model
    return model.model_validate(payload, context={"rules": rules})


def destination_of(payload: BaseModel) -> str | None:
    """What may be shown in clear of where a job goes: the method and the origin, never the
    path, query or userinfo, which can carry credentials."""
    if not isinstance(payload, HttpCallPayload):
        return None
    try:
        parts = urlsplit(payload.url)
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{payload.method} {parts.scheme}://{host}{port}"


def flow_key_of(payload: BaseModel) -> str | None:
    """The flow key a job goes through unless it names one: its target's host (any port),
    which its status shows already; None for a job that calls nobody."""
    if not isinstance(payload, HttpCallPayload):
        return None
    try:
        host = (urlsplit(payload.url).hostname or "").rstrip(".")
    except ValueError:
        return None
    if not host:
        return None
    if re.fullmatch(FLOW_KEY_PATTERN, host):
        return host
    # A name a flow key cannot spell (e.g. not ASCII): the same host, the same digest.
    return "host-" + hashlib.sha256(host.encode()).hexdigest()[:32]


def run_prompt(prompt_type: str, payload: Mapping[str, Any], context: FiringContext) -> BaseModel:
    """Run an accepted payload (validated again, without create-time rules: they already held)."""
    prompt = PROMPT_TYPES[prompt_type]
    return prompt.run(prompt.payload_model.model_validate(payload), context)


__all__ = [
    "PROMPT_TYPES",
    "FiringContext",
    "PayloadRules",
    "PromptType",
    "UnknownPromptType",
    "destination_of",
    "flow_key_of",
    "parse_payload",
    "run_prompt",
]
