"""Model templates and the models made from them. A template is checked whole when it is created (its parameter
schemas, and every `${name}` placeholder against the creation parameters) and is immutable after that but for its
description. A model made from a template takes its model_type and keeps the creation parameters as checked; the
template cannot be deleted while such models exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from modelyard.auth import Principal
from modelyard.db.unique import insert_unique
from modelyard.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed, validation_error
from modelyard.event import service as events
from modelyard.kit.changes import apply_changes
from modelyard.kit.etag import check_if_match
from modelyard.kit.pagination import ListQuery, Pagination, paginate
from modelyard.model.tables import Model
from modelyard.model_template import params, repository
from modelyard.model_template.params import NO_PARAMETERS, ErrorItem, ParameterSpec
from modelyard.model_template.request_schemas import full_request_schema
from modelyard.model_template.schemas import EndpointConfig
from modelyard.model_template.tables import ModelTemplate
from modelyard.workspace import repository as workspaces
from modelyard.workspace.service import WorkspaceAccess, register_resource_counter

if TYPE_CHECKING:
    from modelyard.model.service import ModelAccess

IMMUTABLE_FIELDS = (
    "name",
    "endpoint_type",
    "model_type",
    "endpoint_protocol",
    "vendor_configuration",
    "model_creation_parameters_schema",
    "model_request_parameters_schema",
)
SORT_COLUMNS = {
    "created_at": ModelTemplate.created_at,
    "updated_at": ModelTemplate.updated_at,
    "name": ModelTemplate.name,
}


@register_resource_counter
def _count_templates(session: Session, workspace_id: str) -> dict[str, int]:
    return {"model_templates": repository.count_in_workspace(session, workspace_id)}


def not_found(workspace: str, name: str) -> NotFound:
    return NotFound(
        f"Model template '{name}' not found in workspace '{workspace}'",
        error_code="MODEL_TEMPLATE_NOT_FOUND",
        solution_msg=f"List the templates with GET /v1/workspaces/{workspace}/model-templates",
    )


def get_template(session: Session, ws: WorkspaceAccess, name: str) -> ModelTemplate:
    template = repository.get(session, ws.workspace.id, name)
    if template is None:
        raise not_found(ws.workspace.name, name)
    return template


def _record(
    session: Session, ws: WorkspaceAccess, action: str, template: ModelTemplate, changes: dict[str, Any]
) -> None:
    events.record(
        session,
        actor=ws.principal.name,
        action=action,
        kind="model_template",
        name=template.name,
        resource_id=template.id,
        workspace_id=ws.workspace.id,
        workspace=ws.workspace.name,
        changes=changes,
    )


# -- templates -------------------------------------------------------------------------------------------------------


def check_template(fields: dict[str, Any]) -> tuple[ParameterSpec, ParameterSpec]:
    """The creation and request parameter specs of a template body, or a 422 listing every problem of both schemas
    and every placeholder that names no creation parameter."""
    errors: list[ErrorItem] = []
    creation, problems = params.parse_schema(
        fields.get("model_creation_parameters_schema"), ["body", "model_creation_parameters_schema"]
    )
    errors += problems
    request, problems = params.parse_schema(
        fields.get("model_request_parameters_schema"), ["body", "model_request_parameters_schema"]
    )
    errors += problems
    if not any(e["loc"][1] == "model_creation_parameters_schema" for e in errors):
        bundle = fields["vendor_configuration"]["bundle_config"]
        errors += params.check_placeholders(bundle, creation, ["body", "vendor_configuration", "bundle_config"])
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"Invalid model template: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}{more}",
            error_code="INVALID_MODEL_TEMPLATE",
            solution_msg="Fix the parameter schemas and placeholders listed in 'detail' and retry",
            detail=errors,
        )
    return creation, request


def create_template(session: Session, ws: WorkspaceAccess, fields: dict[str, Any]) -> ModelTemplate:
    creation, request = check_template(fields)
    template = ModelTemplate(
        workspace_id=ws.workspace.id,
        name=fields["name"],
        description=fields.get("description", ""),
        endpoint_type=fields["endpoint_type"],
        model_type=fields["model_type"],
        endpoint_protocol=fields.get("endpoint_protocol"),
        vendor_configuration=fields["vendor_configuration"],
        model_creation_parameters_schema=creation.document
        if fields.get("model_creation_parameters_schema") is not None
        else None,
        model_request_parameters_schema=request.document
        if fields.get("model_request_parameters_schema") is not None
        else None,
        created_by=ws.principal.name,
        updated_by=ws.principal.name,
    )
    insert_unique(
        session,
        template,
        Conflict(
            f"Model template '{fields['name']}' already exists in workspace '{ws.workspace.name}'",
            error_code="MODEL_TEMPLATE_ALREADY_EXISTS",
            solution_msg="Pick another name: templates are immutable, so a changed template is a new one",
        ),
    )
    _record(
        session,
        ws,
        "model_template.created",
        template,
        {"endpoint_type": template.endpoint_type, "model_type": template.model_type},
    )
    return template


def list_templates(
    session: Session, ws: WorkspaceAccess, query: ListQuery
) -> tuple[list[ModelTemplate], Pagination, str | None]:
    return paginate(
        session,
        repository.templates_query(ws.workspace.id, query.filters),
        query,
        columns=SORT_COLUMNS,
        tiebreak=ModelTemplate.id,
    )


def list_visible_templates(
    session: Session, principal: Principal, query: ListQuery
) -> tuple[list[tuple[ModelTemplate, str]], Pagination, str | None]:
    """SGP's list: the templates of every workspace the caller belongs to (every workspace for a server admin),
    each with its workspace's name."""
    rows, pagination, token = paginate(
        session,
        repository.visible_templates_query(None if principal.is_admin else principal.user_id, query.filters),
        query,
        columns=SORT_COLUMNS,
        tiebreak=ModelTemplate.id,
    )
    names = repository.workspace_names(session, {t.workspace_id for t in rows})
    return [(t, names.get(t.workspace_id, "")) for t in rows], pagination, token


def update_template(
    session: Session,
    ws: WorkspaceAccess,
    name: str,
    changes: dict[str, Any],
    refused: list[str],
    if_match: str | None,
) -> ModelTemplate:
    """Change the description. `refused`: the other fields the body named, each refused by name (422)."""
    if refused:
        immutable = [f for f in refused if f in IMMUTABLE_FIELDS]
        detail = [
            {
                "loc": ["body", f],
                "msg": "Model templates are immutable (as on SGP): only description can change"
                if f in immutable
                else "Extra inputs are not permitted",
                "type": "immutable" if f in immutable else "extra_forbidden",
            }
            for f in refused
        ]
        if immutable:
            raise ValidationFailed(
                f"Model templates are immutable (as on SGP): {', '.join(immutable)} cannot change; "
                "only description can",
                error_code="MODEL_TEMPLATE_IMMUTABLE",
                solution_msg="Create a new template with the changed fields (and make new models from it)",
                detail=detail,
            )
        raise ValidationFailed(f"Invalid request: body.{refused[0]}: Extra inputs are not permitted", detail=detail)
    template = get_template(session, ws, name)
    check_if_match(if_match, template)
    applied = apply_changes(template, changes)
    if applied:
        template.updated_by = ws.principal.name
        session.flush()
        _record(session, ws, "model_template.updated", template, applied)
    return template


def delete_template(session: Session, ws: WorkspaceAccess, name: str, if_match: str | None) -> None:
    template = get_template(session, ws, name)
    check_if_match(if_match, template)
    # Lock first, then look for models: a model being made from it waits for this transaction, or is seen here.
    locked = repository.lock(session, template.id, shared=False)
    if locked is None:
        raise not_found(ws.workspace.name, name)
    users = [f"model '{w}/{m}'" for w, m in repository.models_using(session, template.id)]
    if users:
        raise Conflict(
            f"Model template '{ws.workspace.name}/{name}' is in use by {', '.join(users)}",
            error_code="MODEL_TEMPLATE_IN_USE",
            solution_msg="Delete the models made from it first",
            detail={"referenced_by": users},
        )
    session.delete(locked)
    _record(session, ws, "model_template.deleted", locked, {})


# -- models made from templates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateBinding:
    """What a new model takes from its template."""

    template: ModelTemplate
    ref: str
    model_type: str
    parameters: dict[str, Any]
    coercions: list[dict[str, Any]]


def _resolve(session: Session, ws: WorkspaceAccess, ref: str) -> tuple[ModelTemplate, str]:
    parts = ref.strip().split("/")
    if not (1 <= len(parts) <= 2 and all(parts)):
        raise validation_error(["body", "model_template"], "Expected 'template' or 'workspace/template'")
    workspace, name = (ws.workspace.name, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    full = f"{workspace}/{name}"
    if workspace == ws.workspace.name:
        workspace_id = ws.workspace.id
    else:
        found = workspaces.get_with_role(session, workspace, ws.principal.user_id)
        if found is None or (found[1] is None and not ws.principal.is_admin):
            raise Forbidden(
                f"You may not read model template '{full}': you are not a member of workspace '{workspace}'",
                error_code="MODEL_TEMPLATE_NOT_READABLE",
                solution_msg=f"Ask an admin of '{workspace}' for access, or use a template of '{ws.workspace.name}'",
            )
        workspace_id = found[0].id
    template = repository.get(session, workspace_id, name)
    # A shared lock until the model is in: the template cannot be deleted in between.
    template = repository.lock(session, template.id, shared=True) if template is not None else None
    if template is None:
        raise BadRequest(
            f"Model template '{full}' not found in workspace '{workspace}'",
            error_code="MODEL_TEMPLATE_NOT_FOUND",
            solution_msg=f"List the templates with GET /v1/workspaces/{workspace}/model-templates",
        )
    return template, full


def _parameters_error(errors: list[ErrorItem], what: str, source: str) -> ValidationFailed:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(
        f"Invalid {what} for {source}: {first['loc'][-1]}: {first['msg']}{more}",
        error_code=f"INVALID_{what.upper()}",
        solution_msg=f"Fix the parameters listed in 'detail'; the template's {what}_schema declares them",
        detail=errors,
    )


def bind_new_model(session: Session, ws: WorkspaceAccess, fields: dict[str, Any]) -> TemplateBinding | None:
    """For a model being created: its template and its creation parameters, checked; None without a template."""
    ref = fields.get("model_template")
    values = fields.get("model_creation_parameters")
    if not ref:
        if values:
            raise validation_error(
                ["body", "model_creation_parameters"], "Creation parameters need a model_template to check them against"
            )
        return None
    template, full = _resolve(session, ws, ref)
    if fields.get("model_type") and fields["model_type"] != template.model_type:
        raise validation_error(
            ["body", "model_type"],
            f"A model made from template '{full}' has the template's model_type {template.model_type}; "
            "leave model_type out",
        )
    spec = params.load_schema(template.model_creation_parameters_schema)
    checked = params.check_values(spec, values or {}, ["body", "model_creation_parameters"])
    if checked.errors:
        raise _parameters_error(checked.errors, "model_creation_parameters", f"model template '{full}'")
    return TemplateBinding(template, full, template.model_type, checked.values, checked.coercions)


def check_model_update(model: Model, changes: dict[str, Any]) -> None:
    """A model made from a template keeps the template's model_type."""
    if model.model_template and changes.get("model_type", model.model_type) != model.model_type:
        raise validation_error(
            ["body", "model_type"],
            f"A model made from template '{model.model_template}' keeps the template's model_type {model.model_type}",
        )


def _template_of(session: Session, access: ModelAccess) -> ModelTemplate | None:
    """The template a model was made from; None when it was made without one."""
    model = access.model
    if not model.model_template:
        return None
    template = repository.get_by_id(session, model.model_template_id) if model.model_template_id else None
    if template is None:
        raise Conflict(
            f"Model '{access.ref}' was made from template '{model.model_template}', which no longer exists "
            "(its workspace was deleted)",
            error_code="MODEL_TEMPLATE_GONE",
            solution_msg="Make the model again from an existing template",
        )
    return template


def launch_config(session: Session, access: ModelAccess) -> dict[str, Any]:
    """The template's launch configuration for this model: `${name}` placeholders in bundle_config's command,
    streaming_command and env values replaced by the model's creation parameters, every creation parameter also
    in env (the template's own env entries win), and endpoint_config's defaults when the template left it out."""
    template = _template_of(session, access)
    if template is None:
        raise Conflict(
            f"Model '{access.ref}' was not made from a model template, so it has no launch configuration",
            error_code="MODEL_NOT_FROM_TEMPLATE",
            solution_msg="Create the model with model_template and model_creation_parameters",
        )
    values = access.model.model_creation_parameters or {}
    vendor = dict(template.vendor_configuration)
    vendor["bundle_config"] = params.render_bundle(vendor["bundle_config"], values)
    if vendor.get("endpoint_config") is None:
        vendor["endpoint_config"] = EndpointConfig().model_dump(mode="json")
    return {
        "model": access.ref,
        "model_template": access.model.model_template,
        "model_template_id": template.id,
        "model_type": access.model.model_type,
        "endpoint_type": template.endpoint_type,
        "endpoint_protocol": template.endpoint_protocol,
        "vendor_configuration": vendor,
        "model_creation_parameters": values,
    }


def _request_spec(session: Session, access: ModelAccess) -> tuple[ParameterSpec, bool]:
    template = _template_of(session, access)
    if template is None or template.model_request_parameters_schema is None:
        return NO_PARAMETERS, False
    spec = params.load_schema(template.model_request_parameters_schema)
    return spec, bool(spec.names) or not spec.closed


def validate_request(
    session: Session, access: ModelAccess, bindings: dict[str, Any] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Request parameters checked against the template's request schema: (normalised bindings, coercions)."""
    spec, declared = _request_spec(session, access)
    if bindings is None:
        if declared:
            raise ValidationFailed(
                "Invalid request: body.model_request_parameters: Field required: the model's template declares "
                "request parameters",
                detail=[{"loc": ["body", "model_request_parameters"], "msg": "Field required", "type": "missing"}],
            )
        return {}, []
    checked = params.check_values(spec, bindings, ["body", "model_request_parameters", "bindings"])
    if checked.errors:
        template = access.model.model_template
        source = f"model template '{template}'" if template else f"model '{access.ref}', made without a template"
        raise _parameters_error(checked.errors, "model_request_parameters", source)
    return checked.values, checked.coercions


def request_schema(session: Session, access: ModelAccess) -> dict[str, Any]:
    spec, declared = _request_spec(session, access)
    return full_request_schema(access.model.model_type, spec, declared=declared)
