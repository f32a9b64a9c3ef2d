"""Routes of the group «系统管理 admin» (administrators): accounts (list, create with role, departments,
counter duty and holder id; enable or disable; change departments or role; reset a password), the roles
with their labels, and the departments (list, add)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Administrator, services
from api.limits import StrictJSONRoute
from engine.accounts.administration import (
    account,
    reset_account_password,
    set_account_active,
    set_account_role,
)
from engine.accounts.principal import ROLE_LABELS, ROLES, Role
from engine.accounts.service import MAX_PASSWORD, MIN_PASSWORD
from engine.persistence.database import unit_of_work

router = APIRouter(prefix="/admin", route_class=StrictJSONRoute, tags=["系统管理 admin"])

AccountId = Annotated[int, Path(ge=1, le=2**62, description="账号编号")]
DepartmentCode = Annotated[str, Field(min_length=1, max_length=40, description="部门代码")]


# ------------------------------------------------------------------ schemas
class AccountRowOut(BaseModel):
    id: int = Field(description="账号编号")
    username: str = Field(description="用户名")
    display_name: str = Field(description="姓名或单位名称")
    role: Role = Field(description="角色代码")
    role_label: str = Field(description="角色名称")
    departments: list[str] = Field(description="所属部门代码（审批人员）")
    intake: bool = Field(description="是否综合窗口受理人员")
    holder_id: str | None = Field(description="申请人的身份证号或统一社会信用代码")
    active: bool = Field(description="是否启用")
    created_at: datetime = Field(description="创建时间（UTC）")


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, description="用户名（3-64 位小写字母、数字、. _ -）")
    password: str = Field(
        min_length=1, max_length=MAX_PASSWORD, description=f"初始密码（{MIN_PASSWORD}-{MAX_PASSWORD} 位）"
    )
    role: Role = Field(description="角色：applicant / officer / designer / supervisor / administrator")
    display_name: str = Field(min_length=1, max_length=200, description="姓名或单位名称")
    departments: list[DepartmentCode] = Field(
        default_factory=list, max_length=50, description="所属部门（审批人员必填）"
    )
    intake: bool = Field(strict=True, default=False, description="综合窗口受理人员（审批人员）")
    holder_id: str | None = Field(
        default=None, max_length=64, description="身份证号或统一社会信用代码（申请人必填）"
    )


class ActiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool = Field(strict=True, description="true 启用，false 停用（停用即结束其会话与令牌）")


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        max_length=1024, description=f"新密码（{MIN_PASSWORD}-{MAX_PASSWORD} 位，不记录、不回显）"
    )


class DepartmentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    departments: list[DepartmentCode] = Field(max_length=50, description="所属部门代码")
    intake: bool = Field(strict=True, default=False, description="综合窗口受理人员")


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="新角色：applicant / officer / designer / supervisor / administrator")
    departments: list[DepartmentCode] = Field(
        default_factory=list, max_length=50, description="所属部门（新角色为审批人员时必填）"
    )
    intake: bool = Field(strict=True, default=False, description="综合窗口受理人员（审批人员）")
    holder_id: str | None = Field(
        default=None, max_length=64, description="身份证号或统一社会信用代码（新角色为申请人时必填）"
    )


class RoleOut(BaseModel):
    code: Role = Field(description="角色代码")
    label: str = Field(description="角色名称")


class DepartmentOut(BaseModel):
    code: str = Field(description="部门代码（即模型中的候选组）")
    name: str = Field(description="部门名称")


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=40, description="部门代码（小写字母开头，字母、数字、下划线）")
    name: str = Field(min_length=1, max_length=200, description="部门名称")


def _row(row: dict[str, Any]) -> AccountRowOut:
    return AccountRowOut(**row, role_label=ROLE_LABELS[row["role"]])


# ------------------------------------------------------------------ accounts
@router.get("/accounts", response_model=list[AccountRowOut], summary="账号列表")
def list_accounts(request: Request, caller: Administrator) -> list[AccountRowOut]:
    svc = services(request)
    with svc.engine.connect() as conn:
        return [_row(r) for r in svc.accounts.list_accounts(conn)]


@router.post("/accounts", response_model=AccountRowOut, status_code=201, summary="新建账号")
def create_account(request: Request, caller: Administrator, body: AccountIn) -> AccountRowOut:
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        account_id = svc.accounts.create_account(
            conn,
            username=body.username,
            password=body.password,
            role=body.role,
            display_name=body.display_name,
            actor=caller.actor,
            departments_of=body.departments,
            intake=body.intake,
            holder_id=body.holder_id,
        )
        return _row(account(svc.accounts, conn, account_id))


@router.put("/accounts/{account_id}/active", response_model=AccountRowOut, summary="启用或停用账号")
def set_active(
    request: Request, caller: Administrator, account_id: AccountId, body: ActiveIn
) -> AccountRowOut:
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        return _row(set_account_active(svc.accounts, conn, account_id, body.active, caller))


@router.put("/accounts/{account_id}/password", response_model=AccountRowOut, summary="重置密码")
def reset_password(
    request: Request, caller: Administrator, account_id: AccountId, body: PasswordIn
) -> AccountRowOut:
    """A new password for an account (a forgotten one): its sessions and API tokens end. Not the caller's
    own (``own_account``: that one is changed with the current password, ``POST /auth/password``)."""
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        return _row(reset_account_password(svc.accounts, conn, account_id, body.password, caller))


@router.put("/accounts/{account_id}/departments", response_model=AccountRowOut, summary="调整所属部门")
def set_departments(
    request: Request, caller: Administrator, account_id: AccountId, body: DepartmentsIn
) -> AccountRowOut:
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        svc.accounts.set_departments(conn, account_id, body.departments, body.intake, caller.actor)
        return _row(account(svc.accounts, conn, account_id))


@router.put("/accounts/{account_id}/role", response_model=AccountRowOut, summary="变更角色")
def set_role(request: Request, caller: Administrator, account_id: AccountId, body: RoleIn) -> AccountRowOut:
    """Another role for an account, with what it needs (an officer's departments, an applicant's holder
    id): the account signs in again, and the tasks it claimed outside its new scope are released. Not
    the caller's own (``own_account``)."""
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        row = set_account_role(
            svc.accounts,
            conn,
            account_id,
            body.role,
            caller,
            departments_of=body.departments,
            intake=body.intake,
            holder_id=body.holder_id,
        )
        return _row(row)


# ------------------------------------------------------------------ roles and departments
@router.get("/roles", response_model=list[RoleOut], summary="角色")
def roles(caller: Administrator) -> list[RoleOut]:
    return [RoleOut(code=code, label=ROLE_LABELS[code]) for code in ROLES]  # type: ignore[arg-type]


@router.get("/departments", response_model=list[DepartmentOut], summary="部门列表")
def list_departments(request: Request, caller: Administrator) -> list[DepartmentOut]:
    svc = services(request)
    with svc.engine.connect() as conn:
        return [DepartmentOut(**d) for d in svc.accounts.list_departments(conn)]


@router.post("/departments", response_model=DepartmentOut, status_code=201, summary="新增部门")
def add_department(request: Request, caller: Administrator, body: DepartmentIn) -> DepartmentOut:
    svc = services(request)
    with unit_of_work(svc.engine) as conn:
        svc.accounts.add_department(conn, body.code, body.name, caller.actor)
    return DepartmentOut(code=body.code, name=body.name.strip())
