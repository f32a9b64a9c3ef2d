/* onewindow applicant and public pages: choosing items, the application form and its uploads, supplements,
 * tracking by case number and check code. Every write goes to /api/v1 through ow.js (window.ow).
 */
(function () {
  "use strict";

  const ZONE = "Asia/Shanghai";
  const CLOSED = new Set(["refused", "finished", "delivered", "terminated", "withdrawn"]);
  const NOT_FINISHED = new Set(["refused", "withdrawn"]); // closed, but not 办结 (不予受理, 撤回)

  // ---------------------------------------------------------------- dates (UTC in, Beijing time out)
  function clockParts(date) {
    const fmt = new Intl.DateTimeFormat("en-CA", {
      timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
    const out = {};
    fmt.formatToParts(date).forEach((p) => { out[p.type] = p.value; });
    return out;
  }

  function localTime(iso) {
    if (!iso) return "";
    const p = clockParts(new Date(iso));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }

  /* The last day of a deadline: one that falls at 00:00 Beijing time ends with the day before. */
  function deadlineDay(iso) {
    if (!iso) return "";
    const at = new Date(iso);
    const p = clockParts(at);
    if (p.hour === "00" && p.minute === "00" && p.second === "00") {
      const q = clockParts(new Date(at.getTime() - 1));
      return `${q.year}-${q.month}-${q.day}`;
    }
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }

  function amount(value) {
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function timeLeft(clock) {
    if (!clock) return "受理后开始计时";
    const unit = clock.unit === "hours" ? "小时" : "个工作日";
    if (clock.status === "stopped") {
      if (clock.finished_on_time === null || clock.finished_on_time === undefined) {
        return "已停止计时（未办结）"; // stopped by a withdrawal: not finished, no verdict
      }
      return clock.finished_on_time ? "已办结，按时完成" : "已办结，超出时限";
    }
    const remaining = clock.remaining || 0;
    const text = remaining >= 0 ? `剩余 ${amount(remaining)} ${unit}` : `已超期 ${amount(-remaining)} ${unit}`;
    return text + (clock.paused ? "（时限中止中）" : "");
  }

  function kib(size) {
    return size >= 1024 * 1024 ? (size / 1024 / 1024).toFixed(1) + " MB" : (size / 1024).toFixed(1) + " KB";
  }

  // ---------------------------------------------------------------- choosing items (点餐式)
  function setupChoose() {
    const form = document.getElementById("choose-form");
    if (!form) return;
    const count = document.getElementById("chosen-count");
    const button = document.getElementById("choose-submit");
    const update = () => {
      const n = form.querySelectorAll("input[name=items]:checked").length;
      count.textContent = String(n);
      button.disabled = n === 0;
    };
    form.addEventListener("change", update);
    update();
  }

  // ---------------------------------------------------------------- material files: checked in the browser
  const SIGNATURES = [
    { type: "application/pdf", bytes: [0x25, 0x50, 0x44, 0x46, 0x2d] },
    { type: "image/png", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
    { type: "image/jpeg", bytes: [0xff, 0xd8, 0xff] },
    { type: "application/ofd", bytes: [0x50, 0x4b, 0x03, 0x04] }, // a ZIP package; the server looks inside
  ];

  async function sniff(file) {
    const head = new Uint8Array(await file.slice(0, 8).arrayBuffer());
    const hit = SIGNATURES.find((s) => s.bytes.every((b, i) => head[i] === b));
    return hit ? hit.type : null;
  }

  function fileState(input, text, kind) {
    const note = input.closest(".file-field").querySelector(".file-state");
    note.textContent = text;
    note.className = "file-state" + (kind ? " is-" + kind : "");
    input.classList.toggle("invalid", kind === "error");
    if (kind === "error") input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  /* Checks the chosen file against the limits the server states; sets input.dataset.state. */
  async function checkFile(input, limits) {
    const file = input.files && input.files[0];
    input.closest(".file-field").querySelector(".file-name").textContent = file ? file.name : "未选择文件";
    if (!file) { input.dataset.state = ""; fileState(input, "", ""); return false; }
    input.dataset.state = "checking";
    fileState(input, "正在检查文件…", "");
    let problem = null;
    let type = null;
    if (file.size === 0) problem = `「${file.name}」是空文件，请重新选择`;
    else if (file.size > limits.max_bytes) {
      problem = `文件过大：「${file.name}」有 ${kib(file.size)}，每份不能超过 ${limits.max_label}`;
    } else {
      type = await sniff(file);
      if (!type) problem = `文件类型不支持：「${file.name}」不是 ${limits.names} 文件（按文件内容判断，与文件名无关）`;
    }
    if (problem) {
      input.dataset.state = "bad";
      fileState(input, problem, "error");
      return false;
    }
    input.dataset.state = "ok";
    fileState(input, `✓ ${file.name}（${limits.types[type].name}，${kib(file.size)}）`, "ok");
    return true;
  }

  async function upload(input, caseNumber) {
    const file = input.files[0];
    const body = new FormData();
    body.append("material", input.dataset.material);
    body.append("file", file, file.name);
    input.dataset.state = "uploading";
    fileState(input, `正在上传「${file.name}」…`, "");
    const path = `/api/v1/applicant/cases/${encodeURIComponent(caseNumber)}/files`;
    const result = await window.ow.api("POST", path, body);
    if (result.ok) {
      input.dataset.state = "uploaded";
      fileState(input, `✓ 已上传「${result.data.original_name}」（${kib(result.data.size)}）`, "ok");
      return true;
    }
    input.dataset.state = "failed";
    const why = result.status === 413 ? `文件过大：每份不能超过 ${currentLimits().max_label}` : result.data.message;
    fileState(input, `上传失败：${why}`, "error");
    return false;
  }

  function currentLimits() {
    return window.ow.embedded("upload-limits");
  }

  // ---------------------------------------------------------------- the application form
  function trackChanges(form) {
    form.querySelectorAll("[data-prefill]").forEach((control) => {
      const holder = control.closest(".field");
      const source = holder && holder.querySelector(".source");
      if (!source) return;
      const update = () => {
        const changed = control.value !== control.dataset.prefill;
        holder.classList.toggle("field-modified", changed);
        source.classList.toggle("source-modified", changed);
        source.textContent = changed
          ? `已手动修改（原值「${control.dataset.prefill}」${source.dataset.original.replace(/^来源：/, "取自")}）`
          : source.dataset.original;
      };
      control.addEventListener("input", update);
      control.addEventListener("change", update);
    });
  }

  function filesOf(form) {
    return Array.from(form.querySelectorAll("input.material-file"));
  }

  const BAD_FILES = "有材料文件不符合要求，请按文件旁的提示重新选择";

  function clearBadFilesError(form) {
    // the form's message about refused files goes once none is left (another message stays)
    const top = form.querySelector(".form-error");
    if (!top || top.textContent !== BAD_FILES) return;
    if (filesOf(form).some((f) => f.dataset.state === "bad")) return;
    top.hidden = true;
    top.textContent = "";
  }

  function buildApplication(form, items) {
    const files = filesOf(form);
    if (files.some((f) => f.dataset.state === "checking")) throw new Error("正在检查所选文件，请稍候再提交");
    if (files.some((f) => f.dataset.state === "bad")) throw new Error(BAD_FILES);
    const body = window.ow.formData(form);
    body.items = items;
    body.form = body.form || {};
    body.provided = body.provided || {};
    if (typeof body.form.contact_phone === "string" && body.form.contact_phone) {
      body.contact_phone = body.form.contact_phone;
    }
    return body;
  }

  function showSubmitted(form, answer) {
    const card = document.getElementById("submitted");
    document.getElementById("result-case").textContent = answer.case_number;
    document.getElementById("result-code").textContent = answer.check_code;
    document.getElementById("result-link").href = "/my/cases/" + encodeURIComponent(answer.case_number);
    card.hidden = false;
    form.querySelectorAll("#form-fields fieldset").forEach((f) => { f.disabled = true; });
    form.querySelectorAll("input[name^='provided.']").forEach((c) => { c.disabled = true; });
    form.querySelector("button[type=submit]").hidden = true;
    form.classList.add("is-submitted");
    card.scrollIntoView({ block: "start" });
  }

  async function uploadAll(form, caseNumber) {
    const summary = document.getElementById("upload-summary");
    const retry = document.getElementById("retry-uploads");
    retry.hidden = true;
    const waiting = filesOf(form).filter((f) => f.files && f.files[0] && ["ok", "failed"].includes(f.dataset.state));
    if (waiting.length) summary.textContent = `正在上传材料电子件（共 ${waiting.length} 份）…`;
    for (const input of waiting) await upload(input, caseNumber);
    const done = filesOf(form).filter((f) => f.dataset.state === "uploaded").length;
    const failed = filesOf(form).filter((f) => ["failed", "bad"].includes(f.dataset.state)).length;
    if (failed) {
      summary.textContent = `已上传 ${done} 份材料电子件，${failed} 份未成功：请按文件旁的提示重新选择文件后点击「重新上传」。`;
      summary.className = "form-error";
      retry.hidden = false;
    } else {
      summary.textContent = done ? `已上传 ${done} 份材料电子件。` : "未上传材料电子件。";
      summary.className = "form-ok";
    }
  }

  function setupApply() {
    const form = document.getElementById("apply-form");
    if (!form) return;
    const items = window.ow.embedded("apply-items");
    const limits = currentLimits();
    let caseNumber = null;
    trackChanges(form);
    filesOf(form).forEach((input) => {
      input.addEventListener("change", async () => {
        const ok = await checkFile(input, limits);
        const row = input.closest(".material-row");
        const provided = row && row.querySelector("input[name^='provided.']");
        if (ok && provided && !provided.disabled) provided.checked = true;
        clearBadFilesError(form);
      });
    });
    form.owHeaders = () => ({ "Idempotency-Key": form.dataset.idempotencyKey });
    form.owBuild = (f) => buildApplication(f, items);
    form.addEventListener("ow:done", (event) => {
      event.preventDefault();
      caseNumber = event.detail.case_number;
      showSubmitted(form, event.detail);
      uploadAll(form, caseNumber);
    });
    document.getElementById("retry-uploads").addEventListener("click", () => {
      if (caseNumber) uploadAll(form, caseNumber);
    });
  }

  // ---------------------------------------------------------------- supplement on the case page
  function setupSupplement() {
    const form = document.getElementById("supplement-form");
    if (!form) return;
    const limits = currentLimits();
    filesOf(form).forEach((input) => {
      input.addEventListener("change", async () => {
        if (!(await checkFile(input, limits))) return;
        if (await upload(input, form.dataset.case)) {
          const box = form.querySelector(`input[name=materials][value="${CSS.escape(input.dataset.material)}"]`);
          if (box) box.checked = true;
        }
      });
    });
  }

  // ---------------------------------------------------------------- tracking by number and check code
  function slot(root, name) {
    return root.querySelector(`[data-slot="${name}"]`);
  }

  function fillList(list, entries, make) {
    list.replaceChildren(...entries.map(make));
  }

  function renderTrack(root, data) {
    const badges = window.ow.embedded("status-badges") || {};
    slot(root, "case_number").textContent = data.case_number;
    const status = slot(root, "status");
    status.textContent = data.status_label;
    status.className = "badge " + (badges[data.status] || "badge-info");
    const result = slot(root, "result");
    result.hidden = !data.result;
    result.textContent = data.result_label;
    result.className = "badge " + (data.result === "approved" ? "badge-normal" : "badge-red");
    slot(root, "items").textContent = data.items.map((i) => `${i.name}（${i.code}）`).join("、");
    slot(root, "department").textContent = data.department.name || data.department.code;
    const promised = data.promised;
    const dated = Boolean(promised && promised.due_at);
    slot(root, "promised_date").textContent = dated ? deadlineDay(promised.due_at) : "受理后确定";
    slot(root, "promised_date").classList.toggle("value-text", !dated);
    slot(root, "days_left").textContent = timeLeft(promised);
    const closed = CLOSED.has(data.status);
    slot(root, "current").textContent = data.current_steps.length
      ? data.current_steps.map((s) => (s.name || "办理中") + (s.for_applicant ? "（待申请人办理）" : "")).join("、")
      : (closed ? (NOT_FINISHED.has(data.status) ? data.status_label : "已办结") : "—");
    slot(root, "missing_box").hidden = !data.missing.length;
    fillList(slot(root, "missing"), data.missing, (m) => {
      const li = document.createElement("li");
      const badge = document.createElement("span");
      badge.className = "badge badge-yellow";
      badge.textContent = m.state_label;
      li.append(m.name + " ", badge);
      return li;
    });
    fillList(slot(root, "timeline"), data.timeline, (entry, index) => {
      const li = document.createElement("li");
      const last = index === data.timeline.length - 1;
      li.className = last && !closed ? "current" : "done";
      if (last && !closed) li.dataset.testid = "track-timeline-current";
      const label = document.createElement("strong");
      label.textContent = entry.label;
      const at = document.createElement("span");
      at.className = "muted";
      at.textContent = " " + localTime(entry.at);
      li.append(label, at);
      return li;
    });
    slot(root, "warnings").textContent = data.calendar_warnings.join("；");
    root.hidden = false;
  }

  function setupTrack() {
    const form = document.getElementById("track-form");
    if (!form) return;
    const root = document.getElementById("track-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      window.ow.clearErrors(form);
      const body = {
        case_number: form.elements.case_number.value.trim(),
        check_code: form.elements.check_code.value.trim(),
      };
      const empty = Object.keys(body).filter((k) => !body[k]);
      if (empty.length) {
        empty.forEach((k) => window.ow.markField(form, k, k === "case_number" ? "请填写办件编号" : "请填写查询码"));
        return;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const answer = await window.ow.api("POST", "/api/v1/public/track", body);
      button.disabled = false;
      if (answer.ok) { renderTrack(root, answer.data); return; }
      root.hidden = true;
      if (answer.status === 404) {
        window.ow.showError(form, {
          message: "没有查到该办件：办件编号或查询码不正确，请核对后重试",
          detail: { fields: ["check_code"] },
        });
        return;
      }
      window.ow.showError(form, answer.data);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    setupChoose();
    setupApply();
    setupSupplement();
    setupTrack();
  });
})();
