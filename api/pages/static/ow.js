/* onewindow pages: the API client every page uses, and forms that send JSON to /api/v1.
 *
 * <form data-api="POST /api/v1/..." data-then="reload|redirect:/path|none"> sends its named controls as
 * JSON (name "a.b" nests; data-type="int|number|bool|list|json"; checkboxes of one name make a list) with the
 * CSRF secret of the session; a control with data-same-as="name" (and data-skip) must repeat that control
 * (data-mismatch: what to say when it does not), and data-then="message" shows the form's .form-done. A refusal is shown where it belongs: the API's message above the button, and
 * each problem the API names (detail.errors[].field, detail.field, detail.fields) next to its control, in
 * Chinese. What was typed stays. A page may set form.owBuild = (form) => body to shape the body itself, and
 * listens to "ow:done" (detail: the answer) to act on success.
 */
(function () {
  "use strict";

  function cookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
  }

  async function api(method, path, body, options) {
    const opts = options || {};
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = cookie("ow_csrf");
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    } catch (err) {
      return { ok: false, status: 0, data: { code: "network", message: "网络连接失败，请检查网络后重试" } };
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("application/json")) {
      data = await response.json();
    } else {
      data = { text: await response.text() };
    }
    if (!response.ok && (!data || !data.message)) {
      data = { code: "http_" + response.status, message: "服务器返回错误（" + response.status + "）" };
    }
    return { ok: response.ok, status: response.status, data };
  }

  function setPath(target, dotted, value) {
    const parts = dotted.split(".");
    let node = target;
    for (let i = 0; i < parts.length - 1; i++) {
      if (typeof node[parts[i]] !== "object" || node[parts[i]] === null) node[parts[i]] = {};
      node = node[parts[i]];
    }
    const last = parts[parts.length - 1];
    if (Array.isArray(node[last]) && Array.isArray(value)) node[last] = node[last].concat(value);
    else node[last] = value;
  }

  function convert(control, raw) {
    const kind = control.dataset.type || "";
    if (kind === "int") return raw === "" ? null : Number.parseInt(raw, 10);
    if (kind === "number") return raw === "" ? null : Number(raw);
    if (kind === "bool") return raw === "true" || raw === "on" || raw === "1";
    if (kind === "list") return raw.split(/[\n,，、]/).map((s) => s.trim()).filter(Boolean);
    if (kind === "json") return raw === "" ? null : JSON.parse(raw);
    return raw;
  }

  function formData(form) {
    const body = {};
    const lists = new Set();
    for (const control of form.elements) {
      if (!control.name || control.disabled || control.dataset.skip !== undefined) continue;
      if (control.type === "submit" || control.type === "button" || control.type === "file") continue;
      if (control.type === "checkbox" && control.dataset.type !== "bool") {
        if (!lists.has(control.name)) { lists.add(control.name); setPath(body, control.name, []); }
        if (control.checked) setPath(body, control.name, [control.value]);
        continue;
      }
      if (control.type === "checkbox") { setPath(body, control.name, control.checked); continue; }
      if (control.type === "radio") { if (control.checked) setPath(body, control.name, convert(control, control.value)); continue; }
      if (control.multiple && control.options) {
        setPath(body, control.name, Array.from(control.selectedOptions).map((o) => o.value));
        continue;
      }
      const raw = control.value;
      if (raw === "" && control.dataset.optional !== undefined) continue;
      setPath(body, control.name, convert(control, raw));
    }
    return body;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((e) => e.remove());
    form.querySelectorAll(".invalid").forEach((e) => { e.classList.remove("invalid"); e.removeAttribute("aria-invalid"); });
    const top = form.querySelector(".form-error");
    if (top) { top.hidden = true; top.textContent = ""; }
    const done = form.querySelector(".form-done");
    if (done) done.hidden = true;
  }

  function findControl(form, field) {
    if (!field) return null;
    const controls = Array.from(form.querySelectorAll("[name]"));
    const exact = controls.find((c) => c.name === field);
    if (exact) return exact;
    return controls.find((c) => c.name.endsWith("." + field) || field.endsWith("." + c.name)) ||
      controls.find((c) => field.startsWith(c.name + ".")) || null;
  }

  function markField(form, field, message) {
    const control = findControl(form, field);
    if (!control) return false;
    const holder = control.closest(".field") || control.parentElement;
    control.classList.add("invalid");
    control.setAttribute("aria-invalid", "true");
    if (holder.querySelector(".field-error")) return true;
    const note = document.createElement("small");
    note.className = "field-error";
    note.dataset.field = control.name;
    note.textContent = message;
    holder.appendChild(note);
    return true;
  }

  function showError(form, data) {
    const top = form.querySelector(".form-error");
    const detail = (data && data.detail) || {};
    const problems = Array.isArray(detail.errors) ? detail.errors : [];
    problems.forEach((p) => markField(form, p.field, p.message || data.message));
    if (detail.field && !problems.length) markField(form, detail.field, data.message);
    (detail.fields || []).forEach((f) => markField(form, f, data.message));
    if (top) {
      top.textContent = (data && data.message ? data.message : "提交失败") + (data && data.code ? "（" + data.code + "）" : "");
      top.hidden = false;
    }
  }

  function then(form, data) {
    const rule = form.dataset.then || "reload";
    if (rule === "none") return;
    if (rule === "message") { form.reset(); form.querySelector(".form-done").hidden = false; return; }
    if (rule.startsWith("redirect:")) { window.location.assign(rule.slice(9)); return; }
    window.location.reload();
  }

  async function submit(form, event) {
    event.preventDefault();
    clearErrors(form);
    const [method, path] = form.dataset.api.split(" ");
    const differs = Array.from(form.querySelectorAll("[data-same-as]"))
      .find((c) => c.value !== form.elements[c.dataset.sameAs].value);
    if (differs) {
      showError(form, { message: differs.dataset.mismatch || "两次输入不一致", detail: { field: differs.name } });
      return;
    }
    let body;
    try {
      body = form.owBuild ? form.owBuild(form) : formData(form);
    } catch (err) {
      showError(form, { message: err.message || "填写有误", detail: err.detail || {} });
      return;
    }
    if (body === null) return; // the page's own check refused it and said why
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    const result = await api(method, path, body, { headers: form.owHeaders ? form.owHeaders(form) : {} });
    buttons.forEach((b) => (b.disabled = false));
    if (!result.ok) { showError(form, result.data); return; }
    const done = new CustomEvent("ow:done", { detail: result.data, cancelable: true });
    if (form.dispatchEvent(done)) then(form, result.data);
  }

  function bind(root) {
    (root || document).querySelectorAll("form[data-api]").forEach((form) => {
      if (form.dataset.bound) return;
      form.dataset.bound = "1";
      form.addEventListener("submit", (event) => submit(form, event));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bind(document);
    const login = document.getElementById("login-form");
    if (login) {
      login.dataset.then = "none";
      login.addEventListener("ow:done", () => window.location.assign(login.dataset.next || "/"));
    }
    const out = document.getElementById("sign-out");
    if (out) {
      out.addEventListener("click", async () => {
        const result = await api("POST", "/api/v1/auth/logout");
        if (!result.ok && result.status !== 401) {
          window.alert("退出失败：" + (result.data.message || result.status));
          return;
        }
        window.location.assign("/login");
      });
    }
  });

  /* JSON a page embedded with <script type="application/json" id="...">{{ data|tojson }}</script> */
  function embedded(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  window.ow = { api, formData, clearErrors, showError, markField, bind, embedded, cookie };
})();
