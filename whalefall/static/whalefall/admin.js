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

  // django-celery-beat's periodic task form: the chosen crontab in words under the field
  // (its inline script, moved here; the text is shown as text, never as HTML).
  const crontabHelp = (root) => {
    const data = root.getElementById("readable-crontabs");
    const select = root.getElementById("id_crontab");
    const help = root.querySelector(".field-crontab .help");
    root.querySelectorAll(".field-crontab_translation").forEach((row) => {
      row.style.display = "none";
    });
    if (!data || !select || !help) return;
    const readable = JSON.parse(data.textContent);
    const original = help.textContent;
    const update = () => {
      help.textContent = original;
      const words = readable[select.value];
      if (words) {
        help.append(document.createElement("br"), `${gettext("Translation:")} ${words}`);
      }
    };
    select.addEventListener("change", update);
  };

  document.addEventListener("DOMContentLoaded", () => {
    colourBadges(document);
    autosubmit(document);
    exportToggle(document);
    crontabHelp(document);
  });
}
