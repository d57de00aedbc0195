// Optional progressive enhancements for server-rendered pages (worksheet
// listing, admin pages). Everything works without this script.
//
//  <form data-confirm="Delete these worksheets?">   asks before submitting
//  <button data-confirm="...">                     same, for one submit button
//  <input type="checkbox" data-check-all="ids">     (un)checks every
//                                                   input[name=ids] of its form/table
//  [data-requires-selection="ids"]                  disabled while no input[name=ids] is checked
//
// An ES module (templates/listing.jinja2): the upload goes through page/api.js.

import { upload, csrfToken } from "./page/api.js";
import { setUpSearch } from "./page/search.js";

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  const submitter = ev.submitter;
  const msg = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
  if (msg && !window.confirm(msg)) ev.preventDefault();
});

function scopeOf(el) {
  return el.closest("form") || el.closest("table") || document;
}

function updateRequiresSelection(scope) {
  for (const el of scope.querySelectorAll("[data-requires-selection]")) {
    const name = el.dataset.requiresSelection;
    el.disabled = !scope.querySelector(`input[name="${CSS.escape(name)}"]:checked`);
  }
}

document.addEventListener("change", (ev) => {
  const box = ev.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
  const scope = scopeOf(box);
  if (box.dataset.checkAll) {
    for (const other of scope.querySelectorAll(`input[type=checkbox][name="${CSS.escape(box.dataset.checkAll)}"]`)) {
      other.checked = box.checked;
    }
  }
  updateRequiresSelection(scope);
});

for (const form of document.querySelectorAll("form")) updateRequiresSelection(form);

// ---------------------------------------------------------------------------
// Downloading several worksheets as one .zip
//
//  <select data-role="download-format">                    .sws or .ipynb
//  <button data-download="selected" data-href="…/download.zip">   the checked ids
//  <a data-download="all" href="…/download.zip?state=…">    every one of the tab

function downloadFormat(scope) {
  const select = scope.querySelector("select[data-role=download-format]");
  return select && select.value === "ipynb" ? "ipynb" : "sws";
}

function updateDownloadLinks(scope) {
  const format = downloadFormat(scope);
  for (const link of scope.querySelectorAll("a[data-download=all]")) {
    const url = new URL(link.href, document.baseURI);
    url.searchParams.set("format", format);
    link.href = url.href;
  }
}

for (const select of document.querySelectorAll("select[data-role=download-format]")) {
  const scope = scopeOf(select);
  select.addEventListener("change", () => updateDownloadLinks(scope));
  updateDownloadLinks(scope);
}

for (const btn of document.querySelectorAll("button[data-download=selected]")) {
  const scope = scopeOf(btn);
  btn.hidden = false;
  btn.addEventListener("click", () => {
    const ids = Array.from(scope.querySelectorAll('input[name="ids"]:checked'), (box) => box.value);
    if (!ids.length) return;
    const url = new URL(btn.dataset.href, document.baseURI);
    url.searchParams.set("ids", ids.join(","));
    url.searchParams.set("format", downloadFormat(scope));
    // The answer is an attachment: the browser saves it and the page stays.
    window.location.assign(url.href);
  });
}

// ---------------------------------------------------------------------------
// Uploading worksheets (<form data-upload>): XMLHttpRequest with a progress bar.
// One worksheet: on to it; several: back to the listing, saying how many (and
// what was skipped); an error: the server's message in the form's role=alert.

const UPLOAD_NOTE = "sagenb-upload-note";

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function uploadSummary(answer) {
  const made = (answer.worksheets || []).length;
  const skipped = answer.skipped || [];
  let text = `Imported ${plural(made, "worksheet", "worksheets")}.`;
  if (skipped.length) {
    const names = skipped.map((s) => (s.reason ? `${s.file} (${s.reason})` : String(s.file || s)));
    text += ` Skipped ${plural(skipped.length, "file", "files")}: ${names.join("; ")}.`;
  }
  return text;
}

function setUpForm(form) {
  const fileInput = form.querySelector("input[type=file]");
  const submit = form.querySelector("[data-action=upload]");
  const cancel = form.querySelector("[data-action=cancel-upload]");
  const progress = form.querySelector("progress");
  const status = form.querySelector("[data-role=upload-status]");
  const error = form.querySelector("[data-role=upload-error]");
  const csrf = csrfToken(form);
  let uploading = null; // the AbortController of the upload under way

  const note = sessionStorage.getItem(UPLOAD_NOTE);
  if (note) {
    sessionStorage.removeItem(UPLOAD_NOTE);
    status.textContent = note;
  }

  const busy = (on) => {
    submit.disabled = on;
    fileInput.disabled = on;
    if (cancel) cancel.hidden = !on;
    progress.hidden = !on;
    form.classList.toggle("uploading", on);
  };
  const fail = (message) => {
    busy(false);
    status.textContent = "";
    error.textContent = message;
  };

  fileInput.addEventListener("change", () => {
    error.textContent = "";
  });
  // Back from the new worksheet (page cache): the form is ready again.
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted || uploading) return;
    busy(false);
    status.textContent = "";
  });
  if (cancel) cancel.addEventListener("click", () => uploading && uploading.abort());

  form.addEventListener("submit", (ev) => {
    if (!window.FormData || !window.XMLHttpRequest) return; // the plain form post
    ev.preventDefault();
    if (uploading) return;
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      fail("Choose a file to upload first.");
      return;
    }
    const body = new FormData(form);
    error.textContent = "";
    status.textContent = `Uploading ${file.name}\u2026`;
    progress.value = 0;
    progress.max = 100;
    busy(true);

    uploading = new AbortController();
    upload(form.action, body, {
      csrf,
      signal: uploading.signal,
      onProgress: (loaded, total) => {
        progress.value = Math.round((100 * loaded) / total);
        if (loaded >= total) {
          progress.removeAttribute("value"); // indeterminate while the server reads it
          status.textContent = `Importing ${file.name}\u2026`;
        }
      },
    }).then((answer) => {
      uploading = null;
      if (!Array.isArray(answer.worksheets)) {
        fail("Upload failed: unexpected answer from the server.");
        return;
      }
      const made = answer.worksheets;
      if (made.length === 1 && !(answer.skipped || []).length) {
        status.textContent = `Imported \u201c${made[0].name}\u201d.`;
        window.location.assign(new URL(made[0].url, document.baseURI).href);
        return;
      }
      sessionStorage.setItem(UPLOAD_NOTE, uploadSummary(answer));
      status.textContent = uploadSummary(answer);
      window.location.assign(new URL(form.dataset.listingUrl || window.location.href, document.baseURI).href);
    }, (err) => {
      uploading = null;
      if (err.name === "AbortError") {
        busy(false);
        status.textContent = "Upload cancelled.";
      } else if (err.status === 413 || err.status === 0) {
        fail(`Upload failed: ${err.message}.`); // too large, or no network
      } else {
        fail(`Upload failed: ${err.message}`);
      }
    });
  });
}

for (const form of document.querySelectorAll("form[data-upload]")) setUpForm(form);

// Times in the reader's own time zone and format.
for (const el of document.querySelectorAll("time.timestamp")) {
  el.textContent = new Date(parseFloat(el.dataset.ts) * 1000).toLocaleString();
}

for (const form of document.querySelectorAll("form[data-role=search]")) setUpSearch(form);
