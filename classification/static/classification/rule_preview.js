// Rule editor: send the unsaved expression and engine to the preview endpoint and show the
// server-rendered (escaped) result below the form.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.getElementById("wf-rule-preview");
  const button = document.getElementById("wf-rule-preview-button");
  const output = document.getElementById("wf-rule-preview-result");
  if (!panel || !button || !output) return;
  const form = panel.closest("form");
  button.addEventListener("click", async () => {
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("expression", form.querySelector("[name=expression]").value);
    const engine = form.querySelector("[name=engine]");
    data.append("engine", engine ? engine.value : "");
    button.disabled = true;
    output.textContent = "…";
    try {
      const response = await fetch(panel.dataset.url, {
        method: "POST", body: data, credentials: "same-origin",
      });
      output.innerHTML = response.ok ? await response.text() : `HTTP ${response.status}`;
    } catch (error) {
      output.textContent = String(error);
    } finally {
      button.disabled = false;
    }
  });
});
