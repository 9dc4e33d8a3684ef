"""SQL for model templates and the models made from them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelyard.db.match import starts_with
from modelyard.model.tables import Model
from modelyard.model_template.tables import ModelTemplate
from modelyard.workspace.tables import Membership, Workspace


def get(session: Session, workspace_id: str, name: str) -> ModelTemplate | None:
    return session.scalar(
        sa.select(ModelTemplate).where(ModelTemplate.workspace_id == workspace_id, ModelTemplate.name == name)
    )


def get_by_id(session: Session, template_id: str) -> ModelTemplate | None:
    return session.get(ModelTemplate, template_id)


def lock(session: Session, template_id: str, *, shared: bool) -> ModelTemplate | None:
    """The template with its row locked (PostgreSQL): shared by a model being made from it, exclusive by its
    deletion, so a model is never made from a template being deleted. None when it is gone."""
    return session.scalar(
        sa.select(ModelTemplate)
        .where(ModelTemplate.id == template_id)
        .with_for_update(read=shared)
        .execution_options(populate_existing=True)
    )


def _filtered(stmt: sa.Select[ModelTemplate], filters: dict[str, Any]) -> sa.Select[ModelTemplate]:
    if "model_type" in filters:
        stmt = stmt.where(ModelTemplate.model_type == filters["model_type"])
    if "endpoint_type" in filters:
        stmt = stmt.where(ModelTemplate.endpoint_type == filters["endpoint_type"])
    if "name_prefix" in filters:
        stmt = stmt.where(starts_with(ModelTemplate.name, filters["name_prefix"]))
    return stmt


def templates_query(workspace_id: str, filters: dict[str, Any]) -> sa.Select[ModelTemplate]:
    return _filtered(sa.select(ModelTemplate).where(ModelTemplate.workspace_id == workspace_id), filters)


def visible_templates_query(user_id: str | None, filters: dict[str, Any]) -> sa.Select[ModelTemplate]:
    """Templates of every workspace the user belongs to (every workspace when user_id is None)."""
    stmt = sa.select(ModelTemplate)
    if user_id is not None:
        mine = sa.select(Membership.workspace_id).where(Membership.user_id == user_id)
        stmt = stmt.where(ModelTemplate.workspace_id.in_(mine))
    if "workspace" in filters:
        named = sa.select(Workspace.id).where(Workspace.name == filters["workspace"])
        stmt = stmt.where(ModelTemplate.workspace_id.in_(named))
    return _filtered(stmt, filters)


def workspace_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return {i: n for i, n in session.execute(sa.select(Workspace.id, Workspace.name).where(Workspace.id.in_(ids)))}


def count_in_workspace(session: Session, workspace_id: str) -> int:
    return session.scalar(sa.select(sa.func.count()).where(ModelTemplate.workspace_id == workspace_id)) or 0


def models_using(session: Session, template_id: str, limit: int = 100) -> list[tuple[str, str]]:
    """(workspace, model) of the models made from a template."""
    stmt = (
        sa.select(Workspace.name, Model.name)
        .join(Workspace, Workspace.id == Model.workspace_id)
        .where(Model.model_template_id == template_id)
        .order_by(Workspace.name, Model.name)
        .limit(limit)
    )
    return [(w, m) for w, m in session.execute(stmt)]
