/* The diagram of one model version (designer/model.html): the viewer, the version picker, the download. */
(function () {
  const xml = ow.embedded("version-bpmn");
  const box = document.getElementById("diagram");
  const pick = document.getElementById("version");
  pick.addEventListener("change", () => pick.form.submit());
  ow.diagram(box, xml, {});
  document.getElementById("download-version").addEventListener("click", (event) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([xml], { type: "application/xml" }));
    link.download = event.currentTarget.dataset.filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
  });
})();
