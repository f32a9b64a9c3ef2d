/* The designers' web modeler: bpmn-js Modeler (npm, UMD global BpmnJS) with a side panel of our own for the
 * attributes our parser reads (engine/workflow/parser.py, namespace ow: = http://onewindow.org/schema/bpmn):
 *   user / manual task: ow:candidateGroups, ow:candidateUsers, ow:assignee, ow:formKey, ow:deadlineDays or
 *   ow:deadlineHours, ow:warnRatio (0..1), ow:clock (legal|promised|task|none), ow:suspendsCaseClock (true)
 * The moddle descriptor (static/ow-moddle.json, embedded by the page) makes them properties of the elements,
 * so they survive saveXML unchanged; the panel writes them with modeling.updateProperties (one command per
 * change: undo works). Buttons: open a file, download, validate (POST /api/v1/designer/validate, problems
 * marked on the diagram and listed beside it, a row selects its element), deploy (POST
 * /api/v1/designer/deployments). The canvas's data-state / data-selected / data-problems say what is shown.
 */
(function () {
  "use strict";

  const OW_NS = "http://onewindow.org/schema/bpmn";
  const CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn";
  const HUMAN = ["bpmn:UserTask", "bpmn:ManualTask"];
  const TYPE_LABELS = {
    "bpmn:UserTask": "用户任务", "bpmn:ManualTask": "人工任务", "bpmn:Process": "流程",
    "bpmn:Participant": "泳池", "bpmn:Lane": "泳道", "bpmn:StartEvent": "开始事件", "bpmn:EndEvent": "结束事件",
    "bpmn:ExclusiveGateway": "排他网关", "bpmn:ParallelGateway": "并行网关", "bpmn:InclusiveGateway": "包容网关",
    "bpmn:SequenceFlow": "顺序流", "bpmn:ScriptTask": "脚本任务", "bpmn:ServiceTask": "服务任务",
    "bpmn:Task": "任务", "bpmn:SubProcess": "子流程", "bpmn:CallActivity": "调用活动",
    "bpmn:IntermediateCatchEvent": "中间捕获事件", "bpmn:IntermediateThrowEvent": "中间抛出事件",
    "bpmn:BoundaryEvent": "边界事件", "bpmn:Collaboration": "协作图",
  };
  const MAX_FILE_BYTES = 5 * 1024 * 1024;

  const data = ow.embedded("modeler-data");
  const LIMITS = data.deadlineLimits; // the parser's: whole working days from 0, or more than 0 hours
  const doc = data.document;
  const canvasEl = document.getElementById("canvas");
  const propsBody = document.getElementById("props-body");
  const errorEl = document.getElementById("modeler-error");
  const state = { filename: doc.filename, lastGoodXml: doc.xml, marked: [], current: null, controls: {}, fittedWidth: 0 };

  const modeler = new window.BpmnJS({
    container: canvasEl,
    keyboard: { bindTo: document },
    moddleExtensions: { ow: data.descriptor },
  });
  window.owModeler = modeler; // what a browser test exports the XML from
  const modeling = modeler.get("modeling");
  const canvas = modeler.get("canvas");
  const registry = modeler.get("elementRegistry");
  const selection = modeler.get("selection");
  const eventBus = modeler.get("eventBus");
  const commandStack = modeler.get("commandStack");

  // ------------------------------------------------------------------ small DOM helpers
  function h(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  function field(label, control, hint) {
    const kids = [h("label", { for: control.id, text: label }), control];
    if (hint) kids.push(h("small", { class: "hint", text: hint }));
    return h("div", { class: "field" }, kids);
  }

  function showError(message) {
    errorEl.textContent = message || "";
    errorEl.hidden = !message;
  }

  function fieldError(control, message) {
    const holder = control.closest(".field");
    holder.querySelectorAll(".field-error").forEach((e) => e.remove());
    control.classList.toggle("invalid", Boolean(message));
    if (message) holder.append(h("small", { class: "field-error", text: message }));
  }

  // ------------------------------------------------------------------ reading the model
  function bo(element) { return element.businessObject; }
  function isHuman(element) { return HUMAN.includes(bo(element).$type); }
  function attr(element, name) { const v = bo(element).get("ow:" + name); return v === undefined ? "" : String(v); }
  function split(value) { return String(value || "").split(",").map((s) => s.trim()).filter(Boolean); }

  function camundaValue(element, name) {
    const defs = modeler.getDefinitions();
    const attrs = (defs && defs.$attrs) || {};
    const prefix = Object.keys(attrs).find((k) => k.startsWith("xmlns:") && attrs[k] === CAMUNDA_NS);
    if (!prefix) return "";
    return bo(element).$attrs[prefix.slice(6) + ":" + name] || "";
  }

  function laneName(element) {
    const lanes = bo(element).get("lanes") || [];
    return lanes.length ? (lanes[0].name || lanes[0].id) : "";
  }

  function elementLabel(id) {
    const element = registry.get(id);
    const name = element && bo(element).name;
    return name ? `${name}（${id}）` : id;
  }

  function rootTarget() {
    const root = canvas.getRootElement();
    return root && bo(root) && bo(root).$type === "bpmn:Process" ? root : null;
  }

  // ------------------------------------------------------------------ writing the model (undoable)
  function update(element, props) {
    const changed = Object.keys(props).some((k) => (bo(element).get(k) || undefined) !== props[k]);
    if (changed) modeling.updateProperties(element, props);
  }

  function setOw(element, values) {
    const props = {};
    Object.entries(values).forEach(([k, v]) => { props["ow:" + k] = v === "" || v === null ? undefined : v; });
    update(element, props);
  }

  // ------------------------------------------------------------------ the side panel
  function groupChoices(element) {
    const box = h("div", { class: "field group-field", id: "p-groups" });
    box.append(h("span", { class: "label", text: "候选组（办理部门）" }));
    const departments = h("div", { class: "checks", role: "group", "aria-label": "部门" });
    data.departments.concat(data.specialGroups).forEach((g) => {
      const id = "p-group-" + g.code;
      const input = h("input", { type: "checkbox", id, value: g.code, "data-testid": "prop-group-" + g.code });
      input.addEventListener("change", () => writeGroups(element));
      departments.append(h("label", { for: id }, [input, " " + g.name]));
      state.controls["group:" + g.code] = input;
    });
    box.append(departments);
    const other = h("input", {
      id: "p-groups-other", "data-testid": "prop-groups-other", autocomplete: "off",
      placeholder: "如 ${department}、${item.department}，多个用逗号分隔",
    });
    other.addEventListener("change", () => writeGroups(element));
    state.controls.groupsOther = other;
    box.append(h("label", { for: other.id, class: "sub", text: "其他候选组或数据占位符" }), other);
    const note = h("small", { class: "hint", id: "p-groups-note", "data-testid": "prop-groups-note" });
    state.controls.groupsNote = note;
    box.append(note);
    return box;
  }

  function knownGroup(code) { return Boolean(state.controls["group:" + code]); }

  function writeGroups(element) {
    const before = split(attr(element, "candidateGroups"));
    const wanted = new Set(split(state.controls.groupsOther.value));
    Object.keys(state.controls).filter((k) => k.startsWith("group:")).forEach((k) => {
      if (state.controls[k].checked) wanted.add(k.slice(6));
    });
    const kept = before.filter((g) => wanted.has(g));
    const added = Array.from(wanted).filter((g) => !kept.includes(g));
    setOw(element, { candidateGroups: kept.concat(added).join(",") });
  }

  function formChoice(element) {
    const select = h("select", { id: "p-form", "data-testid": "prop-form" }, [h("option", { value: "", text: "（不指定表单）" })]);
    data.forms.forEach((f) => select.append(h("option", { value: f.key, text: `${f.title}（${f.key}）` })));
    select.addEventListener("change", () => setOw(element, { formKey: select.value }));
    state.controls.form = select;
    return field("表单", select);
  }

  function deadlineChoice(element) {
    const amount = h("input", {
      id: "p-deadline", type: "number", min: "0", step: "any", inputmode: "decimal",
      "data-testid": "prop-deadline", placeholder: "不设期限",
    });
    const unit = h("select", { id: "p-deadline-unit", "data-testid": "prop-deadline-unit", "aria-label": "时限单位" }, [
      h("option", { value: "days", text: "工作日" }), h("option", { value: "hours", text: "小时" }),
    ]);
    const write = () => {
      const raw = amount.value.trim();
      const value = Number(raw);
      const days = unit.value === "days";
      const fits = Number.isFinite(value) && value <= LIMITS[unit.value] && (days ? value >= 0 && Number.isInteger(value) : value > 0);
      if (amount.validity.badInput) { fieldError(amount, "请输入数字"); return; } // not a number: value is ""
      if (raw !== "" && !fits) {
        fieldError(amount, days
          ? `工作日时限须为 0 到 ${LIMITS.days} 之间的整数（0 为当日办结）`
          : `小时时限须大于 0 且不超过 ${LIMITS.hours}`);
        return;
      }
      fieldError(amount, "");
      setOw(element, { deadlineDays: days ? raw : "", deadlineHours: days ? "" : raw });
    };
    amount.addEventListener("change", write);
    unit.addEventListener("change", write);
    state.controls.deadline = amount;
    state.controls.deadlineUnit = unit;
    const row = h("div", { class: "inline" }, [amount, unit]);
    const box = h("div", { class: "field" }, [h("label", { for: amount.id, text: "办理时限" }), row]);
    box.append(h("small", { class: "hint", text: "按法定工作日（节假日顺延）或自然小时计" }));
    return box;
  }

  function warnChoice(element) {
    const input = h("input", {
      id: "p-warn", type: "number", min: "0", max: "100", step: "1", inputmode: "numeric",
      "data-testid": "prop-warn", placeholder: "默认 80",
    });
    input.addEventListener("change", () => {
      const raw = input.value.trim();
      const pct = Number(raw);
      if (raw !== "" && (!Number.isFinite(pct) || pct < 0 || pct > 100)) {
        fieldError(input, "请输入 0 到 100 之间的百分比");
        return;
      }
      fieldError(input, "");
      setOw(element, { warnRatio: raw === "" ? "" : String(pct / 100) });
    });
    state.controls.warn = input;
    const row = h("div", { class: "inline" }, [input, h("span", { text: "%" })]);
    const box = h("div", { class: "field" }, [h("label", { for: input.id, text: "预警阈值" }), row]);
    box.append(h("small", { class: "hint", text: "时限用去该比例时亮黄灯，到期亮红灯" }));
    return box;
  }

  function clockChoice(element) {
    const select = h("select", { id: "p-clock", "data-testid": "prop-clock" }, [h("option", { value: "", text: "默认（环节时限）" })]);
    data.clockKinds.forEach((k) => select.append(h("option", { value: k.kind, text: `${k.label}（${k.kind}）`, title: k.description })));
    select.addEventListener("change", () => setOw(element, { clock: select.value }));
    state.controls.clock = select;
    return field("计时类型", select, "环节时间计入哪个时限");
  }

  function suspendsChoice(element) {
    const input = h("input", { type: "checkbox", id: "p-suspends", "data-testid": "prop-suspends" });
    input.addEventListener("change", () => setOw(element, { suspendsCaseClock: input.checked ? "true" : "" }));
    state.controls.suspends = input;
    return h("div", { class: "field checks" }, [
      h("label", { for: input.id }, [input, " 本环节暂停办件计时（等待申请人，如补正材料）"]),
    ]);
  }

  function peopleChoice(element) {
    const users = h("input", { id: "p-users", "data-testid": "prop-users", autocomplete: "off", placeholder: "用户名，逗号分隔" });
    const assignee = h("input", { id: "p-assignee", "data-testid": "prop-assignee", autocomplete: "off", placeholder: "用户名或 ${数据名}" });
    users.addEventListener("change", () => setOw(element, { candidateUsers: split(users.value).join(",") }));
    assignee.addEventListener("change", () => setOw(element, { assignee: assignee.value.trim() }));
    state.controls.users = users;
    state.controls.assignee = assignee;
    return h("details", { class: "more" }, [
      h("summary", { text: "更多：候选人、指定办理人" }), field("候选人", users), field("指定办理人", assignee),
    ]);
  }

  function nameField(element, target) {
    const input = h("input", { id: "p-name", "data-testid": "prop-name", autocomplete: "off" });
    input.addEventListener("change", () => writeProcess(element, target, { name: input.value.trim() || undefined }));
    state.controls.name = input;
    return field("名称", input);
  }

  function writeProcess(element, target, props) {
    if (target && target !== bo(element)) modeling.updateModdleProperties(element, target, props);
    else update(element, props);
  }

  function processFields(element, target) {
    const id = h("input", { id: "p-process-id", "data-testid": "prop-process-id", autocomplete: "off", spellcheck: "false" });
    id.addEventListener("change", () => {
      const value = id.value.trim();
      if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,199}$/.test(value)) {
        fieldError(id, "流程标识须以字母或下划线开头，只含字母、数字、下划线、点和横线");
        return;
      }
      if (value !== target.id && registry.get(value)) { fieldError(id, "该标识已被图中其他元素使用"); return; }
      fieldError(id, "");
      if (doc.isNew && state.filename === target.id + ".bpmn") setFilename(value + ".bpmn");
      writeProcess(element, target, { id: value });
    });
    state.controls.processId = id;
    return [field("流程标识（部署后的模型标识）", id, "同一标识再次部署即为新版本"), nameField(element, target)];
  }

  function setFilename(name) {
    state.filename = name;
    document.getElementById("filename").textContent = name;
  }

  function render(target) {
    const element = target && target.businessObject ? target : null; // the implicit root while importing
    state.current = element;
    state.controls = {};
    propsBody.replaceChildren();
    canvasEl.dataset.selected = element ? element.id : "";
    if (!element) {
      propsBody.append(h("p", { class: "muted", text: "选中图中的用户任务，可设置候选组、表单和时限。" }));
      return;
    }
    const type = bo(element).$type;
    const head = h("p", { class: "prop-head", "data-testid": "prop-element" }, [
      h("span", { class: "badge badge-info", text: TYPE_LABELS[type] || type.replace("bpmn:", "") }), " ",
      h("code", { class: "prop-id", text: element.id }),
    ]);
    propsBody.append(head);
    const processRef = type === "bpmn:Participant" ? bo(element).processRef : null;
    if (type === "bpmn:Process" || processRef) {
      propsBody.append(...processFields(element, processRef || bo(element)));
    } else {
      propsBody.append(nameField(element, null));
    }
    if (isHuman(element)) {
      propsBody.append(groupChoices(element), formChoice(element), deadlineChoice(element),
        warnChoice(element), clockChoice(element), suspendsChoice(element), peopleChoice(element));
    } else if (!processRef && type !== "bpmn:Process") {
      propsBody.append(h("p", { class: "muted", text: "候选组、表单与时限只用于用户任务和人工任务。" }));
    } else {
      propsBody.append(h("p", { class: "muted", text: "选中图中的用户任务，可设置候选组、表单和时限。" }));
    }
    fill();
  }

  function put(control, value) {
    if (!control || control === document.activeElement) return;
    if (control.type === "checkbox") control.checked = Boolean(value);
    else control.value = value;
  }

  function fill() {
    const element = state.current;
    const c = state.controls;
    if (!element) return;
    const shown = propsBody.querySelector(".prop-id");
    if (shown) shown.textContent = element.id;
    if (c.processId) {
      const target = bo(element).$type === "bpmn:Participant" ? bo(element).processRef : bo(element);
      put(c.processId, target.id);
      put(c.name, target.name || "");
    } else {
      put(c.name, bo(element).name || "");
    }
    if (!isHuman(element)) return;
    fillGroups(element);
    fillForm(element);
    const days = attr(element, "deadlineDays");
    const hours = attr(element, "deadlineHours");
    put(c.deadline, days || hours);
    if (days || hours) put(c.deadlineUnit, days ? "days" : "hours");
    const ratio = attr(element, "warnRatio");
    put(c.warn, ratio === "" || Number.isNaN(Number(ratio)) ? ratio : String(Math.round(Number(ratio) * 1000) / 10));
    put(c.clock, attr(element, "clock").toLowerCase());
    put(c.suspends, attr(element, "suspendsCaseClock").toLowerCase() === "true");
    put(c.users, attr(element, "candidateUsers") || camundaValue(element, "candidateUsers"));
    put(c.assignee, attr(element, "assignee") || camundaValue(element, "assignee"));
  }

  function fillGroups(element) {
    const c = state.controls;
    const own = split(attr(element, "candidateGroups"));
    Object.keys(c).filter((k) => k.startsWith("group:")).forEach((k) => put(c[k], own.includes(k.slice(6))));
    put(c.groupsOther, own.filter((g) => !knownGroup(g)).join(", "));
    const camunda = camundaValue(element, "candidateGroups");
    const lane = laneName(element);
    let note = "";
    if (!own.length && camunda) note = `当前取自 camunda:candidateGroups：${camunda}（在此设置后以 ow: 为准）`;
    else if (!own.length && lane && !attr(element, "assignee") && !attr(element, "candidateUsers")) note = `未设置时按所在泳道「${lane}」分派`;
    c.groupsNote.textContent = note;
  }

  function fillForm(element) {
    const select = state.controls.form;
    const own = attr(element, "formKey");
    const value = own || camundaValue(element, "formKey");
    if (value && !Array.from(select.options).some((o) => o.value === value)) {
      select.append(h("option", { value, text: `${value}（表单库中没有）` }));
    }
    put(select, own);
    if (!own && value) {
      select.closest(".field").querySelectorAll(".hint").forEach((n) => n.remove());
      select.closest(".field").append(h("small", { class: "hint", text: `当前取自 camunda:formKey：${value}` }));
    }
  }

  // ------------------------------------------------------------------ problems on the diagram
  function clearMarkers() {
    state.marked.forEach((id) => { if (registry.get(id)) canvas.removeMarker(id, "has-problem"); });
    state.marked = [];
    canvasEl.dataset.problems = "";
  }

  function focusElement(id) {
    const element = registry.get(id);
    if (!element) return;
    if (element === canvas.getRootElement()) { selection.select(null); render(element); return; }
    selection.select(element);
    canvas.scrollToElement(element);
  }

  function problemRow(problem) {
    const id = problem.element_id;
    const known = Boolean(id && registry.get(id));
    const where = id ? elementLabel(id) : "整个文档";
    const line = problem.line ? `第 ${problem.line} 行` : "";
    const kids = [
      h("strong", { class: "where", text: where }),
      h("span", { class: "message", text: problem.message }),
      h("small", { class: "muted", text: [problem.code, line].filter(Boolean).join(" · ") }),
    ];
    const row = known
      ? h("button", { type: "button", class: "problem", "data-element-id": id, "data-testid": "problem" }, kids)
      : h("div", { class: "problem", "data-testid": "problem" }, kids);
    if (known) row.addEventListener("click", () => focusElement(id));
    return h("li", {}, [row]);
  }

  function showOutcome(title, summary, kind, problems, extra) {
    clearMarkers();
    const box = document.getElementById("outcome");
    box.hidden = false;
    box.dataset.kind = kind;
    box.classList.remove("stale");
    document.getElementById("outcome-title").textContent = title;
    const summaryEl = document.getElementById("outcome-summary");
    summaryEl.className = kind === "ok" ? "form-ok" : kind === "error" ? "form-error" : "";
    summaryEl.replaceChildren(summary, ...(extra || []));
    const list = document.getElementById("problems");
    list.replaceChildren(...problems.map(problemRow));
    const ids = Array.from(new Set(problems.map((p) => p.element_id).filter((id) => id && registry.get(id))));
    ids.forEach((id) => canvas.addMarker(id, "has-problem"));
    state.marked = ids;
    canvasEl.dataset.problems = ids.join(" ");
  }

  // ------------------------------------------------------------------ talking to the API (XML bodies)
  async function currentXml() {
    const { xml } = await modeler.saveXML({ format: true });
    return xml;
  }

  async function postXml(path) {
    const xml = await currentXml();
    const url = path + "?filename=" + encodeURIComponent(state.filename);
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/xml", Accept: "application/json", "X-CSRF-Token": ow.cookie("ow_csrf") },
        body: xml,
      });
    } catch (err) {
      return { ok: false, status: 0, data: { code: "network", message: "网络连接失败，请检查网络后重试" } };
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok && (!body || !body.message)) body = { code: "http_" + response.status, message: `服务器返回错误（${response.status}）` };
    return { ok: response.ok, status: response.status, data: body };
  }

  function refusal(title, data) {
    const problems = (data.detail && Array.isArray(data.detail.problems)) ? data.detail.problems : [];
    const text = `${data.message}（${data.code}）` + (problems.length ? `：${problems.length} 个问题` : "");
    showOutcome(title, text, "error", problems);
  }

  async function busy(button, work) {
    const buttons = document.querySelectorAll(".modeler-toolbar button");
    buttons.forEach((b) => (b.disabled = true));
    showError("");
    try { await work(); } catch (err) { showError("操作失败：" + (err.message || err)); } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  function problemsOf(report) {
    return report.document_problems.concat(...report.processes.map((p) => p.problems));
  }

  async function validate() {
    const result = await postXml("/api/v1/designer/validate");
    if (!result.ok) { refusal("校验失败", result.data); return; }
    const report = result.data;
    const problems = problemsOf(report);
    if (report.executable && !problems.length) {
      const names = report.processes.map((p) => p.process_id).join("、");
      showOutcome("校验结果", `校验通过：${names} 可以部署`, "ok", []);
    } else {
      const summary = problems.length ? `发现 ${problems.length} 个问题，部署前请修改` : "该文档没有可部署的流程";
      showOutcome("校验结果", summary, "problems", problems);
    }
  }

  async function explainRefusal(data) {
    // a refusal of the whole document (no executable process...) names no element: the validator does
    const given = data.detail && Array.isArray(data.detail.problems) ? data.detail.problems : [];
    if (given.length) { refusal("部署被拒绝", data); return; }
    const checked = await postXml("/api/v1/designer/validate");
    const problems = checked.ok ? problemsOf(checked.data) : [];
    showOutcome("部署被拒绝", `${data.message}（${data.code}）` + (problems.length ? `：${problems.length} 个问题` : ""), "error", problems);
  }

  async function deploy() {
    const result = await postXml("/api/v1/designer/deployments");
    if (!result.ok) { await explainRefusal(result.data); return; }
    const links = result.data.map((d) => {
      const text = d.created ? `${d.key} 第 ${d.version} 版` : `${d.key} 第 ${d.version} 版（与最新版本相同，未新建版本）`;
      return h("a", { href: `/designer/models/${encodeURIComponent(d.key)}?version=${d.version}`, "data-testid": "deployed", text });
    });
    const parts = [];
    links.forEach((a, i) => { if (i) parts.push("、"); parts.push(a); });
    const created = result.data.some((d) => d.created);
    const summary = created ? "部署成功：" : "无需部署：";
    showOutcome("部署结果", summary, "ok", [], parts.concat([
      h("br"), h("small", { text: "运行中的办件仍按原版本办理，新办件使用新版本。" }),
    ]));
  }

  function download() {
    return currentXml().then((xml) => {
      const link = h("a", { href: URL.createObjectURL(new Blob([xml], { type: "application/xml" })), download: state.filename });
      document.body.append(link);
      link.click();
      link.remove();
    });
  }

  // ------------------------------------------------------------------ loading a document
  async function load(xml, label) {
    canvasEl.dataset.state = "loading";
    try {
      const { warnings } = await modeler.importXML(xml);
      state.lastGoodXml = xml;
      canvas.zoom("fit-viewport", "auto");
      state.fittedWidth = canvasEl.clientWidth;
      document.getElementById("outcome").hidden = true;
      clearMarkers();
      render(canvas.getRootElement());
      if (label) document.getElementById("modeler-source").textContent = label;
      if (warnings && warnings.length) {
        document.getElementById("modeler-source").append(` · 导入时有 ${warnings.length} 条提示（无法识别的内容已忽略）`);
      }
      canvasEl.dataset.state = "ready";
      return true;
    } catch (err) {
      showError("无法打开该 BPMN 文档：" + (err.message || err));
      if (xml !== state.lastGoodXml) await modeler.importXML(state.lastGoodXml);
      canvasEl.dataset.state = "ready";
      return false;
    }
  }

  async function openFile(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    showError("");
    if (file.size > MAX_FILE_BYTES) { showError("文件过大（最大 5 MB）"); return; }
    const ok = await load(await file.text(), `已打开文件 ${file.name}`);
    if (ok) setFilename(file.name.replace(/[\\/]/g, "_").slice(0, 200) || "upload.bpmn");
  }

  // ------------------------------------------------------------------ wiring
  eventBus.on("selection.changed", (event) => {
    const picked = event.newSelection.length === 1 ? event.newSelection[0] : null;
    const element = picked && picked.type === "label" ? picked.labelTarget : picked;
    render(element || canvas.getRootElement());
  });
  eventBus.on("commandStack.changed", () => {
    if (state.current && !registry.get(state.current.id)) render(canvas.getRootElement());
    else fill();
    document.getElementById("outcome").classList.add("stale");
    canvasEl.dataset.changes = String((Number(canvasEl.dataset.changes) || 0) + 1);
  });

  document.getElementById("open-file").addEventListener("change", (e) => openFile(e.target));
  document.getElementById("download").addEventListener("click", (e) => busy(e.target, download));
  document.getElementById("validate").addEventListener("click", (e) => busy(e.target, validate));
  document.getElementById("deploy").addEventListener("click", (e) => busy(e.target, deploy));
  document.getElementById("fit").addEventListener("click", () => { canvas.resized(); canvas.zoom("fit-viewport", "auto"); });
  document.getElementById("undo").addEventListener("click", () => { if (commandStack.canUndo()) commandStack.undo(); });
  window.addEventListener("resize", () => {
    // a new width (a phone turned, a window resized) fits the diagram again; a height change alone (a
    // phone's keyboard opening over the panel) and a window of no size (a screenshot) leave it alone
    const width = canvasEl.clientWidth;
    if (!width || !canvasEl.clientHeight) return;
    canvas.resized();
    if (width !== state.fittedWidth) { state.fittedWidth = width; canvas.zoom("fit-viewport", "auto"); }
  });

  load(doc.xml, null);
})();
