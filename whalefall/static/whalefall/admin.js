// WhaleFall's admin behaviour, loaded by every admin page. The Content-Security-Policy
// allows no inline script, no event-handler attribute and no inline style, so what
// templates used to do inline happens here.
"use strict";
{
  const gettext = window.gettext || ((text) => text);

  // Badges coloured per object (tags, classifications, chart legends): the colour travels
  // in data-tag-colour and is set through the CSSOM, which the policy allows.
  const colourBadges = (root) => {
    root.querySelectorAll("[data-tag-colour]").forEach((badge) => {
      if (/^#[0-9a-fA-F]{6}$/.test(badge.dataset.tagColour)) {
        badge.style.setProperty("--tag-colour", badge.dataset.tagColour);
      }
    });
  };

  // <select data-autosubmit> submits its form when changed (filters without a button).
  const autosubmit = (root) => {
    root.querySelectorAll("select[data-autosubmit]").forEach((select) => {
      select.addEventListener("change", () => select.form && select.form.submit());
    });
  };

  // django-import-export's export page: the "select all" box (its onchange attribute).
  const exportToggle = (root) => {
    root.querySelectorAll("input.select-toggle").forEach((toggle) => {
      toggle.addEventListener("change", (event) => {
        if (typeof window.onSelectToggleChange === "function") {
          window.onSelectToggleChange(event);
        }
      });
    });
  };

  // The periodic task form: only the field of the chosen way of repeating is shown.
  const repeatFields = (root) => {
    const radios = root.querySelectorAll('input[name="repeat"]');
    if (!radios.length) return;
    const rows = { daily: ".field-at", interval: ".field-every_minutes", cron: ".field-cron" };
    const update = () => {
      const chosen = root.querySelector('input[name="repeat"]:checked');
      Object.entries(rows).forEach(([value, selector]) => {
        root.querySelectorAll(selector).forEach((row) => {
          row.style.display = chosen && chosen.value !== value ? "none" : "";
        });
      });
    };
    radios.forEach((radio) => radio.addEventListener("change", update));
    update();
  };

  // Changelist cells cut to one line (admin.css): the full text as the cell's tooltip,
  // worked out when the pointer reaches the cell (the cut depends on the window's width).
  const cellTitles = (root) => {
    const table = root.getElementById("result_list");
    if (!table) return;
    table.addEventListener("mouseover", (event) => {
      const cell = event.target.closest("td, th");
      if (!cell || !table.contains(cell)) return;
      if (cell.scrollWidth > cell.clientWidth) {
        if (!cell.hasAttribute("title")) cell.setAttribute("title", cell.textContent.trim());
      }
    });
  };

  document.addEventListener("DOMContentLoaded", () => {
    colourBadges(document);
    autosubmit(document);
    exportToggle(document);
    repeatFields(document);
    cellTitles(document);
  });
}
