/* The officer's pages: the diagram with the current position, and what an action did once the page reloads.
 *
 * Every action form (form.action-form) posts to /api/v1/officer/tasks/{id}/<action> through ow.js; on
 * success the page reloads to show the task's new state and the history with the opinion just given, and
 * this script says above the summary what was done (kept in sessionStorage across the reload).
 */
(function () {
  "use strict";

  const FLASH = "ow-officer-done";

  function describe(label, data) {
    let text = "已办理「" + label + "」";
    if (data && data.case_status_label) text += "，办件状态：" + data.case_status_label;
    const next = (data && data.opened_tasks) || [];
    if (next.length) {
      const names = Array.from(new Set(next.map((t) => t.name || t.element_id)));
      text += "；下一环节：" + names.join("、");
    } else if (data && data.instance_status === "completed") {
      text += "；流程已结束";
    }
    return text + "。";
  }

  function bindActions() {
    document.querySelectorAll("form.action-form").forEach((form) => {
      form.addEventListener("ow:done", (event) => {
        try {
          sessionStorage.setItem(FLASH, describe(form.dataset.label || "", event.detail));
        } catch (err) { /* storage off: the history still shows it */ }
      });
    });
  }

  function showFlash() {
    const box = document.getElementById("action-done");
    if (!box) return;
    let text = null;
    try { text = sessionStorage.getItem(FLASH); sessionStorage.removeItem(FLASH); } catch (err) { text = null; }
    if (text) { box.textContent = text; box.hidden = false; }
  }

  function drawDiagram() {
    const container = document.getElementById("diagram");
    const data = window.ow.embedded("diagram-data");
    if (!container || !data || !window.ow.diagram) return;
    if (!window.BpmnJS) {
      container.dataset.state = "error";
      container.textContent = "流程图组件未安装，无法显示流程图";
      return;
    }
    window.ow.diagram(container, data.xml, { highlight: data.highlight || [] });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bindActions();
    showFlash();
    drawDiagram();
  });
})();
