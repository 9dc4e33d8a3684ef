"""The body of a call to a model, per model type (SGP's v4 execution requests), as JSON Schema. SGP derives a model's
request schema from its type and its template's request parameters: `model_request_parameters` becomes required when
the template declares any (EGP's get_full_request_schema). AGENT requests are not public on SGP; modelyard describes
them as a list of chat messages. GENERIC models take any object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelyard.kit.schemas import Schema
from modelyard.model.tables import ModelType
from modelyard.model_template.params import JSON_SCHEMA_DIALECT, ParameterSpec, request_parameters_schema


class ChatMessage(Schema):
    role: Literal["user", "assistant", "system"]
    content: str


class _Sampling(Schema):
    temperature: float = Field(default=0.2, ge=0, le=2)
    stop_sequences: list[str] | None = Field(default=None, max_length=4)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stream: bool = False


class CompletionRequest(_Sampling):
    prompt: str


class ChatCompletionRequest(_Sampling):
    prompt: str
    chat_history: list[ChatMessage]


class EmbeddingRequest(Schema):
    texts: list[str]


class RerankingRequest(Schema):
    query: str
    chunks: list[str]


class AgentRequest(Schema):
    messages: list[ChatMessage]
    instructions: str | None = None


REQUESTS: dict[str, type[Schema]] = {
    ModelType.COMPLETION.value: CompletionRequest,
    ModelType.CHAT_COMPLETION.value: ChatCompletionRequest,
    ModelType.EMBEDDING.value: EmbeddingRequest,
    ModelType.RERANKING.value: RerankingRequest,
    ModelType.AGENT.value: AgentRequest,
}


def full_request_schema(model_type: str, spec: ParameterSpec, *, declared: bool) -> dict[str, Any]:
    """The JSON Schema of a whole request to a model of this type. `declared`: the template declares request
    parameters, so `model_request_parameters` is required."""
    request = REQUESTS.get(model_type)
    if request is None:
        schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
    else:
        schema = request.model_json_schema()
    schema = {"$schema": JSON_SCHEMA_DIALECT, "title": f"{model_type} request", **schema}
    schema["properties"] = {**schema.get("properties", {}), "model_request_parameters": request_parameters_schema(spec)}
    if declared:
        schema["required"] = [*schema.get("required", []), "model_request_parameters"]
    return schema
