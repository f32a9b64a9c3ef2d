"""The versioned REST API (``/api/v1``): one router per user group, each route naming its roles."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import admin, applicant, auth, designer, engine, officer, public, supervisor

v1 = APIRouter(prefix="/api/v1")
for module in (auth, public, applicant, officer, designer, engine, supervisor, admin):
    v1.include_router(module.router)
