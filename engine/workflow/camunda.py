"""What other tools write into a model beyond plain BPMN: Camunda 7 / Flowable attributes and extension
elements, SpiffWorkflow's extensions. Each is executed as its author meant, accepted with a note, or
reported as a problem of its element; none is silently dropped.

Executed:

* JUEL (``${...}``) in conditions, timers, due dates, multi-instance expressions and input/output
  parameters: translated once at parse time by ``engine.workflow.juel`` (``sandbox_text``).
* ``camunda:initiator`` on the start event: the variable is set to the actor who starts the case;
  ``camunda:candidateStarterGroups`` / ``camunda:candidateStarterUsers`` on the process: who may start it;
  ``camunda:formKey`` on the start event: the start form (all read by ``start_meta`` into the start event's
  ``extensions``, then ``Definition``).
* ``camunda:inputOutput`` on a task: each input parameter becomes a task-local variable when the task
  starts (a variable of the case with the same name is hidden meanwhile and comes back afterwards); when
  the task completes, the output parameters are evaluated in the task's scope and written to the case,
  and the input-local variables go away (Camunda 7 "Input/Output Variable Mapping"). Values: a constant
  text, a ``${...}`` expression, ``camunda:list`` and ``camunda:map``; an empty parameter is null.
* SpiffWorkflow's ``spiffworkflow:preScript`` / ``postScript``: run in the sandbox before the task starts
  and when it completes, as SpiffWorkflow's own ``SpiffBpmnTask`` does.

* ``camunda:in`` / ``camunda:out`` on a call activity (``variables="all"``, ``source`` or ``sourceExpression``
  to ``target``) and Flowable's ``inheritVariables``: only what they name passes in and comes back
  (``call_mappings``, run by ``specs.OwCallActivity``); a call activity that maps nothing passes every
  variable both ways, the library's rule.

The first ones run through ``OwTaskHooks``, a data specification placed in the task spec's data input and
output associations (the seams ``BpmnTaskSpec._update_hook`` / ``_on_complete_hook`` call), so the library's
own task classes and serializer stay in use.

Accepted with a note (``notes`` of the process report): ``camunda:asyncBefore`` / ``asyncAfter`` /
``exclusive`` / ``jobPriority`` / ``taskPriority`` / ``historyTimeToLive`` (every step here runs
synchronously in one transaction; there is no job executor and no history cleanup), and the attributes of
``HARMLESS_ATTRIBUTES`` (modeler templates, version tags, task priorities...).

Every vendor extension element directly in ``bpmn:extensionElements`` is executed (``inputOutput``,
``in`` / ``out``), reported by name (``REPORTED_EXTENSIONS``), a note (``HARMLESS_EXTENSIONS``) or, any other,
a problem; Camunda 8's ``zeebe:`` elements included.

Every vendor attribute of a BPMN element is one of three (``_attribute_checks``): executed on that element
(``EXECUTED_ATTRIBUTES``), a note, or a problem (``unsupported_attribute``): the known ones of
``REPORTED_ATTRIBUTES`` (Java delegates, result and error variables, Camunda Forms, skip expressions,
called versions) with a sentence of their own, any other (or a known one on an element that does not read
it) with a general one.

Reported (problem of the element): execution and task listeners, ``camunda:formData`` (generated forms),
``camunda:connector`` / ``camunda:field``, external script resources, a script or condition ``language``
other than ours, a Quartz cron ``timeCycle``, JUEL outside the subset, Camunda's multi-instance variables
(``nrOfInstances``...), input/output parameters given as scripts or on a multi-instance activity,
``camunda:in`` / ``out`` with ``local`` or ``targetExpression``; a ``businessKey`` is a note (no business key
here).
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.serializer.helpers.spec import BpmnDataSpecificationConverter
from SpiffWorkflow.bpmn.specs.data_spec import BpmnDataSpecification

from engine.errors import Problem, UnsafeExpression

from .api import CAMUNDA_NS
from .juel import JuelError, is_juel, to_sandbox
from .sandbox import check_source
from .xml import BPMN_MODEL_NS

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
FLOWABLE_NS = "http://flowable.org/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
VENDORS = {CAMUNDA_NS: "camunda", FLOWABLE_NS: "flowable", ACTIVITI_NS: "activiti"}
"""Namespaces whose attributes and extension elements mean the same (Flowable and Camunda 7 both grew out
of Activiti 5): ``flowable:candidateGroups`` is read as ``camunda:candidateGroups``."""
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
CHECKED = {**VENDORS, ZEEBE_NS: "zeebe"}
"""Namespaces whose attributes and extension elements are checked (Camunda 8's too: none of it runs here)."""
B = f"{{{BPMN_MODEL_NS}}}"
C = f"{{{CAMUNDA_NS}}}"
S = f"{{{SPIFF_NS}}}"


def vendor_attr(node: etree._Element, name: str) -> str | None:
    """``camunda:name`` / ``flowable:name`` / ``activiti:name`` of ``node``, stripped (None when absent)."""
    for ns in VENDORS:
        value = node.get(f"{{{ns}}}{name}")
        if value is not None and value.strip():
            return value.strip()
    return None


def _vendor(tag: str, namespaces: dict[str, str] = VENDORS) -> tuple[str, str] | None:
    """``(prefix, local name)`` of a Camunda / Flowable / Activiti element tag (or of ``namespaces``)."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        if ns in namespaces:
            return namespaces[ns], name
    return None


HOOKS_ID = "ow:hooks"  # the bpmn_id of our hooks: never a data name
OUR_LANGUAGES = frozenset({"python", "text/x-python", "py", "python3", "juel", "javascript/juel"})

IGNORED_ATTRIBUTES = ("asyncBefore", "asyncAfter", "async", "exclusive", "jobPriority", "taskPriority",
                      "historyTimeToLive", "completeAsync")  # fmt: skip
"""Attributes of the job executor and history: a note when set (not ``false``), every step runs at once."""
_USER_TASK_ATTRIBUTES = frozenset({"candidateGroups", "candidateUsers", "assignee", "formKey", "dueDate"})
EXECUTED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "userTask": _USER_TASK_ATTRIBUTES,
    "manualTask": _USER_TASK_ATTRIBUTES,
    "startEvent": frozenset({"initiator", "formKey"}),
    "process": frozenset({"candidateStarterGroups", "candidateStarterUsers"}),
    "multiInstanceLoopCharacteristics": frozenset({"collection", "elementVariable"}),
    "callActivity": frozenset({"inheritVariables"}),
    "scriptTask": frozenset({"resource"}),  # reported on its own (an external script)
}
"""The vendor attributes executed here, by the element they are executed on (``parser``, ``start_meta``,
``call_mappings``); anywhere else, as any attribute not listed here or below, one is a problem."""
HARMLESS_ATTRIBUTES: dict[str, str] = {
    "modelerTemplate": "建模器模板信息，只供建模器使用",
    "modelerTemplateVersion": "建模器模板信息，只供建模器使用",
    "modelerTemplateIcon": "建模器模板信息，只供建模器使用",
    "versionTag": "本系统按部署自动编版本",
    "isStartableInTasklist": "流程由事项目录或接口启动，不经任务列表",
    "priority": "待办按时限和到达时间排序，不按优先级",
    "followUpDate": "跟进日期只在 Camunda 任务列表中显示",
    "category": "任务分类只在 Flowable 任务列表中显示",
    "owner": "任务所有人不分派任务：办理人由 assignee / 候选组决定",
    "formFieldValidation": "本系统的表单总会校验",
    "errorMessage": "错误说明只供显示",
    "calledElementTenantId": "本系统没有租户",
    "tenantId": "本系统没有租户",
    "fallbackToDefaultTenant": "本系统没有租户",
    "businessKey": "本系统的实例没有业务键（business key）",
    "inheritBusinessKey": "本系统的实例没有业务键（business key）",
    "autoStoreVariables": "只对 JavaScript / Groovy 脚本起作用",
}
"""Vendor attributes whose absence changes nothing that runs here: a note (``ignored_attribute``)."""
_DELEGATE = "Camunda / Flowable 在这里调用的 Java 类、委托或表达式（或外部任务）在本系统中不会执行"
_FORM_REF = "Camunda Forms 的表单引用没有实现：请用 camunda:formKey 指向本系统的表单"
_CATCH_VARIABLE = "捕获到的错误码/说明/升级码不会写入这个变量，后面读取它的表达式会得不到值"
_CALLED_VERSION = "本系统调用与调用方一起部署的被调流程版本，不能按版本号或版本标签选择"
_CASE = "CMMN 案例没有实现"
REPORTED_ATTRIBUTES: dict[str, str] = {
    "class": _DELEGATE,
    "delegateExpression": _DELEGATE,
    "expression": _DELEGATE,
    "type": _DELEGATE,
    "topic": _DELEGATE,
    "triggerable": _DELEGATE,
    "resultVariable": "结果变量没有实现：脚本请直接给数据赋值（Python 脚本没有“结果”）",
    "resultVariableName": "结果变量没有实现：脚本请直接给数据赋值（Python 脚本没有“结果”）",
    "errorCodeVariable": _CATCH_VARIABLE,
    "errorMessageVariable": _CATCH_VARIABLE,
    "escalationCodeVariable": _CATCH_VARIABLE,
    "formRef": _FORM_REF,
    "formRefBinding": _FORM_REF,
    "formRefVersion": _FORM_REF,
    "formHandlerClass": _FORM_REF,
    "skipExpression": "条件成立时 Flowable 跳过这个环节，这里总会执行它",
    "calledElementVersion": _CALLED_VERSION,
    "calledElementVersionTag": _CALLED_VERSION,
    "variableMappingClass": "变量映射类没有实现：请用 camunda:in / camunda:out",
    "variableMappingDelegateExpression": "变量映射委托没有实现：请用 camunda:in / camunda:out",
    "caseRef": _CASE,
    "caseBinding": _CASE,
    "caseVersion": _CASE,
    "caseTenantId": _CASE,
    "elementIndexVariable": "多实例序号变量没有实现：每个实例的序号不会写入这个变量",
    "calledElementType": "被调流程只能按流程 id（calledElement）查找",
}
"""Known vendor attributes whose meaning is not executed here, with the sentence that says what changes."""
REPORTED_EXTENSIONS = {
    "executionListener": "执行监听器（executionListener）没有实现，不会被调用",
    "taskListener": "任务监听器（taskListener）没有实现，不会被调用",
    "formData": "Camunda 生成表单（formData）没有实现：请用 camunda:formKey 指向本系统的表单",
    "formProperty": "表单属性（formProperty）没有实现：请用 camunda:formKey 指向本系统的表单",
    "connector": "连接器（connector）没有实现",
    "field": "字段注入（field）没有实现",
    "failedJobRetryTimeCycle": None,  # a note: there are no jobs to retry
    "potentialStarter": "可启动者（potentialStarter）没有实现：请用流程的 candidateStarterGroups 属性",
    "eventListener": "事件监听器（eventListener）没有实现，不会被调用",
    "errorEventDefinition": "外部任务的错误事件（camunda:errorEventDefinition）没有实现",
    "exceptionMap": "异常映射（exceptionMap）没有实现",
    "customResource": "自定义身份关联（customResource）没有实现：请用候选组、候选人或办理人",
    "assignmentDefinition": "Camunda 8 的分派（assignmentDefinition）没有实现：请用候选组/办理人属性",
}
EXECUTED_EXTENSIONS = frozenset({"inputOutput", "in", "out"})
"""Vendor extension elements executed here (``_io_parameters``, ``call_mappings``)."""
HARMLESS_EXTENSIONS = {
    "properties": "扩展属性（properties）只供其他工具读取",
    "userTask": "Camunda 8 的用户任务标记：本系统的用户任务本来就由人办理",
}
"""Vendor extension elements harmless to ignore: a note (``ignored_extension``). Any other one directly in
``bpmn:extensionElements`` that is not reported by name above is a problem (``unsupported_extension``)."""
CAMUNDA_MI_VARIABLES = ("nrOfInstances", "nrOfCompletedInstances", "nrOfActiveInstances", "loopCounter")
_QUARTZ = re.compile(r"^\s*(\S+\s+){5,6}\S*\s*$")


# ---------------------------------------------------------------- expressions


def sandbox_text(text: str | None, condition: bool = False) -> str | None:
    """At parse time: the sandbox expression for a model's text (JUEL translated; a ``condition`` must
    give a Boolean). A text outside the subset is left as it is: the validator has reported it, and the
    process was not called executable."""
    try:
        return to_sandbox(text, condition)
    except JuelError:
        return text


def is_cron(text: str | None) -> bool:
    """A Quartz cron expression as Camunda writes it in a ``timeCycle`` (``0 0/5 * * * ?``)."""
    value = (text or "").strip()
    return bool(value) and not is_juel(value) and _QUARTZ.match(value) is not None and "(" not in value


def juel_problem(element_id: str | None, text: str, what: str, line: int | None) -> Problem | None:
    """A problem when ``text`` is JUEL outside the subset (None when it translates or is ours)."""
    try:
        translated = to_sandbox(text)
    except JuelError as err:
        code = "unsupported_juel" if err.code == "unsupported_juel" else "bad_expression"
        return Problem(element_id, code, f"{what}：{err.message}（原文 {_short(text)}）", line)
    if translated is not None and translated is not text and translated != text:
        used = [name for name in CAMUNDA_MI_VARIABLES if re.search(rf"\b{name}\b", translated)]
        if used:
            return Problem(
                element_id,
                "unsupported_juel",
                f"{what}：Camunda 的多实例变量 {', '.join(used)} 在本系统中没有（原文 {_short(text)}）",
                line,
            )
    return None


def _short(text: str) -> str:
    value = " ".join((text or "").split())
    return value if len(value) <= 80 else value[:80] + "…"


# ---------------------------------------------------------------- start event and process


def start_meta(node: etree._Element) -> dict[str, Any]:
    """What a start event of a top-level process says about starting a case (``extensions['ow_start']``)."""
    process = node.getparent()
    meta: dict[str, Any] = {}
    initiator = vendor_attr(node, "initiator")
    if initiator:
        meta["initiator"] = initiator
    form_key = vendor_attr(node, "formKey")
    if form_key:
        meta["form_key"] = form_key
    if process is not None and process.tag == f"{B}process":
        for attr, key in (
            ("candidateStarterGroups", "starter_groups"),
            ("candidateStarterUsers", "starter_users"),
        ):
            values = [v.strip() for v in (vendor_attr(process, attr) or "").split(",") if v.strip()]
            if values:
                meta[key] = values
    return meta


# ---------------------------------------------------------------- input/output parameters, pre/post scripts


def _param_value(param: etree._Element) -> Any:
    """``["const", text]``, ``["expr", sandbox source]``, ``["list", [values]]``, ``["map", [[k, value]]]`` or
    ``["null"]`` for one ``camunda:inputParameter`` / ``outputParameter`` / list value / map entry."""
    children = [c for c in param if isinstance(c.tag, str)]
    if children:
        child = children[0]
        if child.tag == f"{C}list":
            return ["list", [_param_value(v) for v in child if isinstance(v.tag, str)]]
        if child.tag == f"{C}map":
            return ["map", [[e.get("key") or "", _param_value(e)] for e in child if isinstance(e.tag, str)]]
        return ["null"]  # a script: reported by the checks
    text = param.text or ""
    if not text.strip():
        return ["null"]
    if "${" in text or "#{" in text:
        return ["expr", sandbox_text(text.strip())]
    return ["const", text]


def _io_parameters(node: etree._Element) -> tuple[list[Any], list[Any]]:
    inputs: list[Any] = []
    outputs: list[Any] = []
    for io in node.iterfind(f"{B}extensionElements/{C}inputOutput"):
        for param in io:
            if param.tag == f"{C}inputParameter":
                inputs.append([param.get("name") or "", _param_value(param)])
            elif param.tag == f"{C}outputParameter":
                outputs.append([param.get("name") or "", _param_value(param)])
    return inputs, outputs


def _spiff_script(node: etree._Element, name: str) -> str | None:
    found = node.find(f"{B}extensionElements/{S}{name}")
    if found is None or not (found.text or "").strip():
        return None
    return str(found.text)


def task_hooks(node: etree._Element) -> OwTaskHooks | None:
    """The hooks a task node needs (None when it has neither input/output parameters nor scripts)."""
    inputs, outputs = _io_parameters(node)
    prescript, postscript = _spiff_script(node, "preScript"), _spiff_script(node, "postScript")
    if not (inputs or outputs or prescript or postscript):
        return None
    return OwTaskHooks(HOOKS_ID, None, inputs, outputs, prescript, postscript)


_ABSENT = "ow_io_absent"
_SHADOWED = "ow_io_shadowed"
_STARTED = "ow_hooks_started"


class OwTaskHooks(BpmnDataSpecification):
    """Input/output parameters and pre/post scripts of one task (see the module doc). ``get`` runs when the
    task becomes ready (once), ``set`` when it completes; expressions and scripts run in the sandbox."""

    def __init__(
        self,
        bpmn_id: str = HOOKS_ID,
        bpmn_name: str | None = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        prescript: str | None = None,
        postscript: str | None = None,
    ) -> None:
        super().__init__(bpmn_id, bpmn_name)
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.prescript = prescript
        self.postscript = postscript

    def _value(self, my_task: Any, value: Any) -> Any:
        kind = value[0]
        if kind == "const":
            return value[1]
        if kind == "expr":
            return deepcopy(my_task.workflow.script_engine.evaluate(my_task, value[1]))
        if kind == "list":
            return [self._value(my_task, v) for v in value[1]]
        if kind == "map":
            return {key: self._value(my_task, v) for key, v in value[1]}
        return None

    def get(self, my_task: Any, **_kwargs: Any) -> None:
        if my_task.internal_data.get(_STARTED):
            return  # a waiting task is updated again on every refresh: the hooks ran already
        my_task.internal_data[_STARTED] = True
        if self.inputs:
            values = {name: self._value(my_task, value) for name, value in self.inputs}
            my_task.internal_data[_ABSENT] = [name for name in values if name not in my_task.data]
            my_task.internal_data[_SHADOWED] = {
                name: deepcopy(my_task.data[name]) for name in values if name in my_task.data
            }
            my_task.data.update(values)
        if self.prescript:
            my_task.workflow.script_engine.execute(my_task, self.prescript)

    def set(self, my_task: Any, **_kwargs: Any) -> None:
        if self.postscript:
            my_task.workflow.script_engine.execute(my_task, self.postscript)
        if not (self.inputs or self.outputs):
            return
        results = {name: self._value(my_task, value) for name, value in self.outputs}
        for name in my_task.internal_data.pop(_ABSENT, []):
            my_task.data.pop(name, None)
        my_task.data.update(my_task.internal_data.pop(_SHADOWED, {}))
        my_task.data.update(results)


class OwTaskHooksConverter(BpmnDataSpecificationConverter):  # type: ignore[misc]
    def to_dict(self, data_spec: OwTaskHooks) -> dict[str, Any]:
        return {
            "bpmn_id": data_spec.bpmn_id,
            "bpmn_name": data_spec.bpmn_name,
            "inputs": data_spec.inputs,
            "outputs": data_spec.outputs,
            "prescript": data_spec.prescript,
            "postscript": data_spec.postscript,
        }


def attach_hooks(task_spec: Any, node: etree._Element) -> None:
    """Put the hooks of ``node`` (if any) into the task spec's data associations, last."""
    hooks = task_hooks(node)
    if hooks is not None:
        task_spec.data_input_associations = [*task_spec.data_input_associations, hooks]
        task_spec.data_output_associations = [*task_spec.data_output_associations, hooks]


# ---------------------------------------------------------------- call activity variables (camunda:in / out)


def _call_mapping(element: etree._Element) -> dict[str, Any]:
    """One ``camunda:in`` / ``camunda:out``: ``{"all": True}``, ``{"target", "source"}`` or
    ``{"target", "expr"}`` (the source expression, JUEL translated)."""
    if (element.get("variables") or "").strip() == "all":
        return {"all": True}
    target = (element.get("target") or "").strip()
    source = (element.get("source") or "").strip()
    expression = (element.get("sourceExpression") or "").strip()
    if source or not expression:  # Camunda reads source first, sourceExpression only without one
        return {"target": target, "source": source}
    if "${" not in expression and "#{" not in expression:  # an EL text without ${}: the text itself
        return {"target": target, "expr": repr(expression)}
    return {"target": target, "expr": sandbox_text(expression)}


def call_mappings(node: etree._Element) -> dict[str, Any] | None:
    """The variables a call activity passes in and takes back, as Camunda 7 / Flowable map them (None when
    the model maps none: then the library's rule holds, every variable in and out).

    Camunda 7 (Call Activity, "Passing Variables"): the called instance gets only what ``camunda:in`` names
    (``variables="all"``: every variable; ``source`` / ``sourceExpression`` to ``target``), the caller gets
    back only what ``camunda:out`` names: a call activity with ``camunda:in`` but no ``camunda:out`` changes
    nothing of the caller. A source the instance does not hold is passed as null. Flowable's
    ``flowable:inheritVariables="true"`` is ``<flowable:in variables="all"/>``."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    mapped = False
    if (vendor_attr(node, "inheritVariables") or "").lower() == "true":
        inputs.append({"all": True})
    for child in node.iterfind(f"{B}extensionElements/*"):
        found = _vendor(child.tag) if isinstance(child.tag, str) else None
        if found is None or found[1] not in ("in", "out"):
            continue
        mapped = True
        if child.get("businessKey") is not None and len(child.attrib) == 1:
            continue  # a business key only: noted by the checks, no variable
        (inputs if found[1] == "in" else outputs).append(_call_mapping(child))
        mapped = True
    if not inputs and not mapped:
        return None
    return {"in": inputs, "out": outputs}


def _call_problems(node: etree._Element, problems: list[Problem], notes: list[Problem]) -> None:
    """What of a call activity's ``camunda:in`` / ``out`` is not executed as Camunda does: reported; one
    that maps nothing is noted, as it runs by BPMN's and SpiffWorkflow's rule (every variable in and back)
    where Camunda 7 passes none."""
    element_id = node.get("id")
    if call_mappings(node) is None:
        notes.append(
            Problem(
                element_id,
                "implicit_call_mapping",
                "调用活动没有 camunda:in / camunda:out：本系统把全部变量传入被调流程并带回"
                "（BPMN 与 SpiffWorkflow 的规则），Camunda 7 则一个也不传；"
                "只想传部分变量时请写 camunda:in / camunda:out",
                node.sourceline,
            )
        )
    for child in node.iterfind(f"{B}extensionElements/*"):
        found = _vendor(child.tag) if isinstance(child.tag, str) else None
        if found is None or found[1] not in ("in", "out"):
            continue
        prefix, name = found
        line = child.sourceline
        label = f"{prefix}:{name}"
        if child.get("businessKey") is not None:
            notes.append(
                Problem(
                    element_id,
                    "ignored_extension",
                    f"{label} businessKey 已接受但不起作用：本系统的实例没有业务键（business key）",
                    line,
                )
            )
            if len(child.attrib) == 1:
                continue
        unsupported = [
            attr
            for attr in ("local", "targetExpression")
            if child.get(attr) is not None and (attr != "local" or child.get(attr, "").lower() != "false")
        ]
        for attr in unsupported:
            problems.append(
                Problem(
                    element_id,
                    "unsupported_extension",
                    f'{label} 的 {attr}={child.get(attr)!r} 没有实现：请用 variables="all" 或 source/target',
                    line,
                )
            )
        mapping = _call_mapping(child)
        if mapping.get("all") or unsupported:
            continue
        target = mapping["target"]
        if not target.isidentifier() or target.startswith("_"):
            problems.append(
                Problem(
                    element_id,
                    "bad_extension_value",
                    f"{label} 的 target 不是合法的数据名：{target!r}",
                    line,
                )
            )
        if "expr" in mapping:
            text = (child.get("sourceExpression") or "").strip()
            juel = juel_problem(element_id, text, f"{label} 的 sourceExpression", line)
            if juel is not None:
                problems.append(juel)
            else:
                _check_value(
                    problems, element_id, ["expr", mapping["expr"]], f"{label} 的 sourceExpression", line
                )
        elif not mapping["source"]:
            problems.append(
                Problem(
                    element_id,
                    "bad_extension_value",
                    f'{label} 既没有 source 也没有 sourceExpression，也不是 variables="all"',
                    line,
                )
            )


# ---------------------------------------------------------------- the validator's checks


def _owner(element: etree._Element) -> str | None:
    current: Any = element
    while current is not None:
        if isinstance(current.tag, str) and current.tag.startswith(B) and current.get("id"):
            return str(current.get("id"))
        current = current.getparent()
    return None


def _check_value(
    problems: list[Problem], element_id: str | None, value: Any, what: str, line: int | None
) -> None:
    kind = value[0]
    if kind == "expr":
        try:
            check_source(value[1], "eval")
        except UnsafeExpression as err:
            code = "unsafe_expression" if err.code.startswith("forbidden_") else "bad_expression"
            problems.append(Problem(element_id, code, f"{what}：{err.message}", line))
    elif kind == "list":
        for item in value[1]:
            _check_value(problems, element_id, item, what, line)
    elif kind == "map":
        for _, item in value[1]:
            _check_value(problems, element_id, item, what, line)


def _io_problems(node: etree._Element, problems: list[Problem]) -> None:
    element_id = node.get("id")
    for io in node.iterfind(f"{B}extensionElements/{C}inputOutput"):
        line = io.sourceline
        if node.find(f"{B}multiInstanceLoopCharacteristics") is not None:
            problems.append(
                Problem(element_id, "unsupported_extension", "多实例活动上的输入/输出参数没有实现", line)
            )
        for param in io:
            if not isinstance(param.tag, str):
                continue
            label = "输入参数" if param.tag == f"{C}inputParameter" else "输出参数"
            name = (param.get("name") or "").strip()
            if not name.isidentifier() or name.startswith("_"):
                problems.append(
                    Problem(
                        element_id, "bad_extension_value", f"{label}的名称不是合法的数据名：{name!r}", line
                    )
                )
            for script in param.iter(f"{C}script"):
                problems.append(
                    Problem(
                        element_id,
                        "unsupported_language",
                        f"{label} {name} 用脚本（{script.get('scriptFormat') or '未注明语言'}）"
                        "给出取值，没有实现",
                        script.sourceline,
                    )
                )
            for text_node in [param, *param.iter(f"{C}value", f"{C}entry")]:
                if not list(text_node) and (text_node.text or "").strip():
                    text = text_node.text.strip()
                    if "${" in text or "#{" in text:
                        found = juel_problem(element_id, text, f"{label} {name}", text_node.sourceline)
                        if found is not None:
                            problems.append(found)
            _check_value(problems, element_id, _param_value(param), f"{label} {name}", line)


def _attribute_owner(element: etree._Element) -> str | None:
    """The element an attribute is reported on: an event or loop definition's is its activity or event."""
    tag = element.tag[len(B) :]
    parent = element.getparent()
    if (tag.endswith("EventDefinition") or tag.endswith("LoopCharacteristics")) and parent is not None:
        return _owner(parent)
    return _owner(element)


def _binding_check(value: str) -> tuple[str, str] | None:
    """``camunda:calledElementBinding`` / ``flowable:sameDeployment``: the called version is always the one
    deployed with the caller (Camunda's ``deployment``); ``(code, sentence)`` when the model asks for
    another."""
    binding = value.strip().lower()
    if binding in ("deployment", "true"):
        return None
    if binding in ("latest", "false"):
        return ("ignored_attribute", "被调流程用与调用方一起部署的版本：被调流程单独重新部署后，"
                "要调用方也重新部署（与被调流程一起）才用到新版本")  # fmt: skip
    return ("unsupported_attribute", _CALLED_VERSION)


def _unknown_extension(
    element: etree._Element, prefix: str, name: str, problems: list[Problem], notes: list[Problem]
) -> None:
    """A vendor extension element directly in ``bpmn:extensionElements`` that no rule above names."""
    if name in EXECUTED_EXTENSIONS:
        return
    owner = _owner(element)
    if name in HARMLESS_EXTENSIONS:
        notes.append(
            Problem(owner, "ignored_extension",
                    f"{prefix}:{name} 已接受但不起作用：{HARMLESS_EXTENSIONS[name]}", element.sourceline)
        )  # fmt: skip
        return
    problems.append(
        Problem(owner, "unsupported_extension", f"扩展元素 {prefix}:{name} 没有实现：本系统不执行它",
                element.sourceline)
    )  # fmt: skip


_DEFAULTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("callActivity", "calledElementType"): ("key",),  # Flowable Modeler's: look up by calledElement, as here
    ("callActivity", "useLocalScopeForOutParameters"): ("false",),
}
"""Values of vendor attributes that say what runs here anyway (a modeler writes them by default)."""


def _is_default(kind: str, name: str, value: str) -> bool:
    """An empty attribute (``flowable:skipExpression=""``) asks nothing; some values are what runs here."""
    text = value.strip().lower()
    return not text or text in _DEFAULTS.get((kind, name), ())


def _attribute_checks(element: etree._Element, problems: list[Problem], notes: list[Problem]) -> None:
    """Every Camunda / Flowable / Activiti attribute of one BPMN element: executed here (``EXECUTED_
    ATTRIBUTES``), or a note (harmless to ignore), or a problem (ignoring it changes what runs)."""
    kind = element.tag[len(B) :]
    line = element.sourceline
    for key, value in element.attrib.items():
        vendor = _vendor(key, CHECKED)
        if vendor is None:
            continue
        prefix, name = vendor
        label = f"{prefix}:{name}={_short(value)!r}"
        owner = _attribute_owner(element)
        if name in EXECUTED_ATTRIBUTES.get(kind, ()) or _is_default(kind, name, value):
            continue
        found: tuple[str, str] | None
        if name in IGNORED_ATTRIBUTES:
            if value.strip().lower() in ("", "false"):
                continue
            found = ("ignored_attribute", "本系统每一步都在一个事务中同步执行，没有作业执行器和历史清理")
        elif kind == "callActivity" and name in ("calledElementBinding", "sameDeployment"):
            found = _binding_check(value)
        elif name in HARMLESS_ATTRIBUTES:
            found = ("ignored_attribute", HARMLESS_ATTRIBUTES[name])
        elif name in REPORTED_ATTRIBUTES:
            found = ("unsupported_attribute", REPORTED_ATTRIBUTES[name])
        else:
            found = ("unsupported_attribute", f"本系统在 bpmn:{kind} 上不执行这个属性")
        if found is None:
            continue
        code, reason = found
        if code == "ignored_attribute":
            notes.append(Problem(owner, code, f"{label} 已接受但不起作用：{reason}", line))
        else:
            problems.append(Problem(owner, code, f"{label} 没有实现：{reason}", line))


def camunda_checks(process: etree._Element) -> tuple[list[Problem], list[Problem]]:  # noqa: C901
    """Problems and notes for the extensions of one process (see the module doc)."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    for element in process.iter():
        if not isinstance(element.tag, str):
            continue
        line = element.sourceline
        if element.tag.startswith(B):
            element_id = element.get("id")
            _attribute_checks(element, problems, notes)
            resource = vendor_attr(element, "resource")
            if resource:
                problems.append(
                    Problem(element_id or _owner(element), "unsupported_extension",
                            f"外部脚本资源（camunda:resource={resource!r}）没有实现："
                            "请把脚本写在模型里", line)
                )  # fmt: skip
            local = element.tag[len(B) :]
            if local in ("conditionExpression", "condition", "completionCondition", "loopCardinality"):
                language = (element.get("language") or "").strip()
                if language and language.lower() not in OUR_LANGUAGES:
                    problems.append(
                        Problem(
                            _owner(element),
                            "unsupported_language",
                            f"表达式语言 {language!r} 不能执行："
                            "本系统执行 Python 表达式和 JUEL 子集（${...}）",
                            line,
                        )
                    )
            if local == "timeCycle" and is_cron(element.text):
                problems.append(
                    Problem(
                        _owner(element),
                        "unsupported_timer",
                        f"Quartz cron 表达式 {_short(element.text or '')!r} 不能执行："
                        "请改写为 ISO 8601 循环（如每 5 分钟 R/PT5M，每天 R/P1D）",
                        line,
                    )
                )
            if element.find(f"{B}extensionElements/{C}inputOutput") is not None:
                _io_problems(element, problems)
            if local == "callActivity":
                _call_problems(element, problems, notes)
            for name in ("preScript", "postScript"):
                script = _spiff_script(element, name)
                if script is not None:
                    try:
                        check_source(script, "exec")
                    except UnsafeExpression as err:
                        code = "unsafe_expression" if err.code.startswith("forbidden_") else "bad_expression"
                        problems.append(Problem(element_id, code, f"{name} 脚本：{err.message}", line))
        elif _vendor(element.tag, CHECKED) is not None:
            prefix, name = _vendor(element.tag, CHECKED)  # type: ignore[misc]
            holder = element.getparent()  # extensionElements
            holder = holder.getparent() if holder is not None else None
            owner_tag = holder.tag if holder is not None else ""
            if name in ("in", "out") and owner_tag != f"{B}callActivity":
                problems.append(
                    Problem(
                        _owner(element),
                        "unsupported_extension",
                        f"{prefix}:{name} 只在调用活动上起作用，这里不会传递任何变量",
                        line,
                    )
                )
            if (
                name not in REPORTED_EXTENSIONS
                and holder is not None
                and element.getparent().tag == f"{B}extensionElements"
            ):
                _unknown_extension(element, prefix, name, problems, notes)
            if name in REPORTED_EXTENSIONS:
                owner = _owner(element)
                sentence = REPORTED_EXTENSIONS[name]
                if sentence is None:
                    notes.append(
                        Problem(
                            owner,
                            "ignored_extension",
                            f"{prefix}:{name} 已接受但不起作用：没有可重试的作业",
                            line,
                        )
                    )
                else:
                    problems.append(
                        Problem(
                            owner, "unsupported_extension", sentence.replace("camunda:", f"{prefix}:"), line
                        )
                    )
    return problems, notes
