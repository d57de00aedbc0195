// Optional progressive enhancements for server-rendered pages (worksheet
// listing, admin pages). Everything works without this script.
//
//  <form data-confirm="Delete these worksheets?">   asks before submitting
//  <button data-confirm="...">                     same, for one submit button
//  <input type="checkbox" data-check-all="ids">     (un)checks every
//                                                   input[name=ids] of its form/table
//  [data-requires-selection="ids"]                  disabled while no input[name=ids] is checked

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
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content
    || form.querySelector("input[name=csrf_token]")?.value || "";
  let xhr = null;

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
    if (!ev.persisted || xhr) return;
    busy(false);
    status.textContent = "";
  });
  if (cancel) cancel.addEventListener("click", () => xhr && xhr.abort());

  form.addEventListener("submit", (ev) => {
    if (!window.FormData || !window.XMLHttpRequest) return; // the plain form post
    ev.preventDefault();
    if (xhr) return;
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

    xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      progress.value = Math.round((100 * e.loaded) / e.total);
      if (e.loaded >= e.total) {
        progress.removeAttribute("value"); // indeterminate while the server reads it
        status.textContent = `Importing ${file.name}\u2026`;
      }
    });
    xhr.addEventListener("load", () => {
      const req = xhr;
      xhr = null;
      let answer = null;
      try {
        answer = JSON.parse(req.responseText);
      } catch {
        answer = null;
      }
      if (req.status >= 200 && req.status < 300 && answer && Array.isArray(answer.worksheets)) {
        const made = answer.worksheets;
        if (made.length === 1 && !(answer.skipped || []).length) {
          status.textContent = `Imported \u201c${made[0].name}\u201d.`;
          window.location.assign(new URL(made[0].url, document.baseURI).href);
          return;
        }
        sessionStorage.setItem(UPLOAD_NOTE, uploadSummary(answer));
        status.textContent = uploadSummary(answer);
        window.location.assign(new URL(form.dataset.listingUrl || window.location.href, document.baseURI).href);
        return;
      }
      if (answer && typeof answer.error === "string") {
        fail(`Upload failed: ${answer.error}`);
      } else if (req.status === 413) {
        fail("Upload failed: the file is too large for the server.");
      } else {
        fail(`Upload failed: ${req.status} ${req.statusText || "error"}`.trim());
      }
    });
    xhr.addEventListener("error", () => {
      xhr = null;
      fail("Upload failed: cannot reach the server (network error).");
    });
    xhr.addEventListener("abort", () => {
      xhr = null;
      busy(false);
      status.textContent = "Upload cancelled.";
    });
    xhr.send(body);
  });
}

for (const form of document.querySelectorAll("form[data-upload]")) setUpForm(form);

// Times in the reader's own time zone and format.
for (const el of document.querySelectorAll("time.timestamp")) {
  el.textContent = new Date(parseFloat(el.dataset.ts) * 1000).toLocaleString();
}
