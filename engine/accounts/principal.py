"""Who is acting: a signed-in account with its role, departments and (for an applicant) holder id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Role = Literal["applicant", "officer", "designer", "supervisor", "administrator"]
ROLES: tuple[str, ...] = get_args(Role)
ROLE_LABELS = {
    "applicant": "申请人",
    "officer": "审批人员",
    "designer": "流程设计人员",
    "supervisor": "监督人员",
    "administrator": "系统管理员",
}
INTAKE_GROUP = "window"  # the candidate group of counter (intake and delivery) tasks in the models
APPLICANT_GROUP = "applicant"
SUPERVISOR_GROUP = "supervisor"
# the candidate groups that are not departments
BUILT_IN_GROUPS = frozenset({INTAKE_GROUP, APPLICANT_GROUP, SUPERVISOR_GROUP})


@dataclass(frozen=True)
class Principal:
    """The signed-in account. ``actor`` is what the audit log and opinions record."""

    account_id: int
    username: str
    display_name: str
    role: Role
    departments: frozenset[str] = field(default_factory=frozenset)
    intake: bool = False
    holder_id: str | None = None

    @property
    def actor(self) -> str:
        return self.username

    @property
    def groups(self) -> frozenset[str]:
        """The candidate groups whose tasks this account may take: an officer's departments (and the
        counter's ``window`` for an intake officer), ``applicant`` for an applicant (of their own cases
        only: the case layer checks the case), ``supervisor`` for a supervisor."""
        if self.role == "officer":
            return self.departments | ({INTAKE_GROUP} if self.intake else frozenset())
        if self.role == "applicant":
            return frozenset({APPLICANT_GROUP})
        if self.role == "supervisor":
            return frozenset({SUPERVISOR_GROUP})
        return frozenset()
