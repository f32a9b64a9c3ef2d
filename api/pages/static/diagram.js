/* A BPMN diagram (bpmn-js NavigatedViewer from npm, /static/vendor/bpmn-js/) with elements marked:
 *   ow.diagram(container, xml, { highlight: ["review"], problems: { review: ["..."] }, onSelect: (id) => {} })
 * Highlighted elements get the CSS class "highlight" (the current position of a case), elements with
 * problems "has-problem"; the container's data-state becomes "ready" (or "error") once drawn, and
 * data-highlighted lists what was marked, so a test can read what the user sees.
 */
(function () {
  "use strict";

  async function diagram(container, xml, options) {
    const opts = options || {};
    const viewer = new window.BpmnJS({ container });
    try {
      await viewer.importXML(xml);
    } catch (err) {
      container.dataset.state = "error";
      container.textContent = "流程图无法显示：" + (err.message || err);
      return null;
    }
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    const marked = [];
    (opts.highlight || []).forEach((id) => {
      if (registry.get(id)) { canvas.addMarker(id, "highlight"); marked.push(id); }
    });
    Object.keys(opts.problems || {}).forEach((id) => {
      if (registry.get(id)) canvas.addMarker(id, "has-problem");
    });
    if (opts.onSelect) {
      viewer.get("eventBus").on("element.click", (event) => opts.onSelect(event.element.id));
    }
    const fit = () => {
      if (!container.clientWidth || !container.clientHeight) return; // hidden or mid-resize: nothing to fit
      try { canvas.resized(); canvas.zoom("fit-viewport", "auto"); } catch (err) { /* a zero-size viewport during a resize */ }
    };
    fit();
    window.addEventListener("resize", fit);
    container.dataset.highlighted = marked.join(" ");
    container.dataset.state = "ready";
    return viewer;
  }

  window.ow = Object.assign(window.ow || {}, { diagram });
})();
