// Small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
    });
  }
  // Upload progress: send the form with XHR so the browser reports bytes sent.
  document.querySelectorAll("form[data-progress]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const bar = document.getElementById(form.dataset.progress);
      if (!bar || !window.XMLHttpRequest) { return; }
      event.preventDefault();
      bar.hidden = false;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
      });
      // Uploaded: the server now works (a dry run scans); an indeterminate bar says so.
      xhr.upload.addEventListener("load", () => {
        bar.removeAttribute("value");
        const label = form.querySelector(".progress-label");
        if (label) { label.hidden = false; }
      });
      xhr.addEventListener("load", () => {
        if (xhr.responseURL && xhr.responseURL !== new URL(form.action, location.href).href) {
          location.assign(xhr.responseURL);
        } else {
          // Our own page (validation problems): shown as a new document.
          const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
          document.title = doc.title;
          document.body.replaceWith(document.adoptNode(doc.body));
        }
      });
      xhr.send(new FormData(form));
    });
  });
});
