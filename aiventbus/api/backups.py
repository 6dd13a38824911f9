"""Backups kept before file writes and deletes: list, and restore byte for byte."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from aiventbus.api.actions import executor_of
from aiventbus.errors import Conflict
from aiventbus.records.actions import ActionFailed
from aiventbus.store.actions import BackupRecord

router = APIRouter(prefix="/api/v1/backups", tags=["backups"])


class BackupPage(BaseModel):
    backups: list[BackupRecord]


@router.get("", response_model=BackupPage)
async def list_backups(
    request: Request,
    path: str | None = Query(None, description="Only backups of this absolute path"),
    limit: int = Query(50, ge=1, le=1000),
) -> BackupPage:
    """Newest first."""
    return BackupPage(backups=await executor_of(request).backups.index.list(path, limit))


@router.post(
    "/{backup_id}/restore",
    response_model=BackupRecord,
    responses={404: {"description": "No such backup"}, 409: {"description": "The backup cannot be restored"}},
)
async def restore(request: Request, backup_id: str) -> BackupRecord:
    """Put the saved bytes and mode back; the file there now is backed up first."""
    try:
        return await executor_of(request).backups.restore(backup_id)
    except ActionFailed as error:
        raise Conflict(error.reason) from None
    except OSError as error:
        raise Conflict(f"cannot restore {backup_id}: {error.strerror or error}") from None
