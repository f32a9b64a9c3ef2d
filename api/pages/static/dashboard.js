/* The supervisors' pages: the dashboard's charts (Chart.js, global `Chart`), the push (督办) forms of the
 * yellow/red list and the forms of the working-day calendar.
 *
 * Charts read their data from <script type="application/json" id="figures-data"> (ow.embedded) and leave
 * what they drew on the canvas: data-series (JSON: labels and each dataset's label and values) and
 * data-state="ready". A write that succeeds leaves a one-line notice for the reloaded page (sessionStorage),
 * so what the server now answers is what the user sees, with a word on what was just done.
 */
(function () {
  "use strict";

  const COLORS = ["#1f5fbf", "#1e8e4e", "#d97706", "#7c3aed", "#0891b2", "#c53030", "#64748b"];
  const NOTICE_KEY = "ow.supervisor.notice";

  /* ---------------------------------------------------------------- charts */
  function drawn(canvas, labels, datasets) {
    canvas.dataset.series = JSON.stringify({
      labels,
      datasets: datasets.map((d) => ({ label: d.label, data: d.data })),
    });
    canvas.dataset.state = "ready";
  }

  function chart(id, type, labels, datasets, options) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    const styled = datasets.map((d, i) => Object.assign({
      backgroundColor: COLORS[i % COLORS.length],
      borderColor: COLORS[i % COLORS.length],
      borderWidth: type === "line" ? 2 : 0,
      maxBarThickness: 36,
    }, d));
    const made = new Chart(canvas, {
      type,
      data: { labels, datasets: styled },
      options: Object.assign({
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      }, options || {}),
    });
    drawn(canvas, labels, datasets);
    return made;
  }

  function percentAxis() {
    return {
      scales: { y: { beginAtZero: true, max: 100, ticks: { callback: (v) => v + "%" } } },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12 } },
        tooltip: {
          callbacks: {
            label: (ctx) => ctx.dataset.label + "：" + (ctx.raw === null ? "—" : ctx.raw + "%"),
          },
        },
      },
    };
  }

  function drawCharts() {
    const data = ow.embedded("figures-data");
    if (!data || typeof Chart === "undefined") return;
    const d = data.departments;
    chart("chart-departments", "bar", d.labels, [
      { label: "办件量", data: d.received },
      { label: "办结量", data: d.finished },
    ]);
    const t = data.trend;
    chart("chart-trend", "bar", t.labels, [
      { label: "收件", data: t.received },
      { label: "办结", data: t.finished },
    ]);
    const r = data.rates;
    chart("chart-rates", "bar", r.labels,
      r.figures.map((f) => ({ label: f.label, data: r.values[f.key] })), percentAxis());
  }

  /* ---------------------------------------------------------------- notices after a reload */
  function leaveNotice(text) {
    try { sessionStorage.setItem(NOTICE_KEY, text); } catch (err) { /* private mode: no notice */ }
  }

  function showNotice() {
    const box = document.getElementById("notice");
    if (!box) return;
    let text = null;
    try { text = sessionStorage.getItem(NOTICE_KEY); sessionStorage.removeItem(NOTICE_KEY); } catch (err) { return; }
    if (!text) return;
    box.textContent = text;
    box.hidden = false;
  }

  /* An empty note is refused before sending (the API would answer a bare "过短"); a note of blanks goes to
   * the API, whose refusal lands next to the field the same way. */
  function requireNote(form, message) {
    const build = form.owBuild;
    form.owBuild = (f) => {
      const note = f.querySelector("[name=note]");
      if (note && note.value === "") {
        ow.showError(f, { message, detail: { field: "note" } });
        return null;
      }
      return build ? build(f) : ow.formData(f);
    };
  }

  /* ---------------------------------------------------------------- the push (督办) */
  function bindPushes() {
    document.querySelectorAll("form.push-form").forEach((form) => {
      requireNote(form, "请填写督办意见");
      form.addEventListener("ow:done", (event) => {
        const row = event.detail;
        leaveNotice("已督办办件 " + row.case_id + "（督办记录 #" + row.id + "）：" + row.note);
      });
    });
    document.querySelectorAll("[data-open-push]").forEach((button) => {
      button.addEventListener("click", () => {
        const form = document.getElementById(button.dataset.openPush);
        if (!form) return;
        form.hidden = !form.hidden;
        button.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) form.querySelector("textarea").focus();
      });
    });
  }

  /* ---------------------------------------------------------------- the working-day calendar */
  function summary(change) {
    const state = change.working ? "工作日" : "休息日";
    let text = change.day + " 现为" + state + (change.overridden ? "（已调整）" : "（已撤销调整，按节假日日历）");
    text += "；重算办件时限 " + change.clocks + " 个、任务期限 " + change.tasks + " 个、定时器 " + change.timers + " 个。";
    if (change.failed && change.failed.length) text += " 未能重算：" + change.failed.join("、") + "。";
    if (change.warnings && change.warnings.length) text += " " + change.warnings.join(" ");
    return text;
  }

  function bindCalendar() {
    const form = document.getElementById("set-day-form");
    if (form) {
      const day = form.querySelector("[name=day]");
      form.owBuild = (f) => {
        if (!day.value) {
          ow.showError(f, { message: "请选择要调整的日期", detail: { field: "day" } });
          return null;
        }
        const body = ow.formData(f);
        delete body.day;
        return body;
      };
    }
    document.querySelectorAll("form.calendar-form").forEach((f) => {
      requireNote(f, f.classList.contains("clear-form") ? "请写明撤销调整的说明" : "请写明调整依据（如国务院通知）");
      f.addEventListener("ow:done", (event) => leaveNotice(summary(event.detail)));
    });
  }

  /* The set-day form's path names the day: ow.js reads data-api before owBuild runs, so keep it current. */
  function followDay() {
    const form = document.getElementById("set-day-form");
    if (!form) return;
    const day = form.querySelector("[name=day]");
    const sync = () => { form.dataset.api = "PUT /api/v1/supervisor/calendar/" + (day.value || "-"); };
    day.addEventListener("input", sync);
    day.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", () => {
    showNotice();
    drawCharts();
    bindPushes();
    followDay();
    bindCalendar();
  });
})();
