// The "Data files" panel: the worksheet's files as links; those who may edit the
// worksheet upload (with a progress bar), create, edit, rename and delete them.

import { h, formatBytes } from "./dom.js";
import { ApiError, upload } from "./api.js";

// page.dataFiles: {render(files)}, on `page`, the page's state (worksheet.js).
export function makeDataFiles(page) {
  const dataFilesEl = document.getElementById("data-files");
  const dataRole = (name) => (dataFilesEl ? dataFilesEl.querySelector(`[data-role=${name}]`) : null);
  const DATA_MANAGE = !!(dataFilesEl && page.canEdit && dataRole("data-upload-input"));
  // Files not offered for editing in the page (the editor is for text).
  const BINARY_FILE = /\.(png|jpe?g|gif|bmp|webp|ico|tiff?|pdf|ps|eps|dvi|zip|gz|tgz|bz2|xz|7z|tar|rar|sobj|pickle|pkl|sws|ipynb\.zip|npy|npz|xlsx?|docx?|odt|ods|odp|pptx?|mp3|mp4|m4a|wav|ogg|flac|webm|avi|mov|mkv|so|o|a|dylib|pyc|whl|jar|class|exe|dll|bin|h5|hdf5|mat|db|sqlite3?)$/i;
  const EDIT_MAX_BYTES = 2 * 2 ** 20;

  let dataEditor = null; // {name, original} while a file is open in the editor
  let dataUpload = null; // the AbortController of the upload under way

  function dataFileUrl(name, tail = "") {
    return new URL(`data/${encodeURIComponent(name)}${tail}`, page.wsUrl).href;
  }

  function isEditable(f) {
    return !BINARY_FILE.test(f.name) && !(typeof f.size === "number" && f.size > EDIT_MAX_BYTES);
  }

  function dataError(message, ...actions) {
    const el = dataRole("data-files-error");
    if (!el) {
      if (message) page.messages.show(message, "error");
      return;
    }
    if (!message) {
      el.replaceChildren();
      return;
    }
    el.replaceChildren(h("span", { class: "data-error-text", text: message }), ...actions);
    if (dataFilesEl) dataFilesEl.open = true;
  }

  function dataStatus(text) {
    const el = dataRole("data-upload-status");
    if (el) el.textContent = text || "";
  }

  function renderDataFiles(files) {
    if (!dataFilesEl || !Array.isArray(files)) return;
    const list = dataRole("data-file-list");
    const count = dataRole("data-files-count");
    const empty = dataRole("data-files-empty");
    const sorted = [...files].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    list.replaceChildren(...sorted.map((f) => {
      const size = formatBytes(f.size);
      const href = new URL(f.url || dataFileUrl(f.name), page.wsUrl).href;
      const li = h("li", { class: "data-file", dataset: { name: f.name } },
        h("a", { href, target: "_blank", rel: "noopener", class: "data-file-link", text: f.name, title: `Open ${f.name}` }),
        size ? h("span", { class: "data-file-size", text: size }) : null);
      if (DATA_MANAGE) {
        const act = (action, label, title) => h("button", {
          type: "button", class: "btn-cell data-file-btn", dataset: { fileAction: action, name: f.name }, title,
        }, label);
        li.append(h("span", { class: "data-file-actions" },
          isEditable(f) ? act("edit", "Edit", `Edit ${f.name} in the page`) : null,
          act("rename", "Rename", `Rename ${f.name}`),
          h("a", { class: "btn-cell data-file-btn data-file-download", href, download: f.name, title: `Download ${f.name}` }, "Download"),
          act("delete", "Delete", `Delete ${f.name}`)));
      }
      return li;
    }));
    count.textContent = `(${files.length})`;
    if (empty) empty.hidden = files.length > 0;
    // Those who may only look see the panel when there is something to see.
    dataFilesEl.hidden = !DATA_MANAGE && files.length === 0;
    if (dataEditor && !files.some((f) => f.name === dataEditor.name)) closeDataEditor(true);
  }

  async function reloadDataFiles() {
    const res = await page.api("GET", "data");
    renderDataFiles(res.files || []);
  }

  // One file (multipart field "file"), with its progress; cancelled through dataUpload.
  function uploadOne(file, replace, onProgress) {
    const body = new FormData();
    body.append("file", file, file.name);
    if (replace) body.append("replace", "1");
    const ctrl = new AbortController();
    dataUpload = ctrl;
    return upload(new URL("data", page.wsUrl).href, body, {
      csrf: page.csrf,
      signal: ctrl.signal,
      onProgress: (loaded, total) => onProgress(loaded / total),
    }).then((answer) => {
      onProgress(1);
      return answer;
    }).finally(() => {
      dataUpload = null;
    });
  }

  async function uploadDataFiles(fileList, replace) {
    const files = Array.from(fileList || []);
    if (!files.length || dataUpload) return;
    const box = dataRole("data-upload");
    const progress = dataRole("data-upload-progress");
    const input = dataRole("data-upload-input");
    const cancel = dataFilesEl.querySelector("[data-file-action=cancel-upload]");
    dataError("");
    dataFilesEl.open = true;
    dataFilesEl.classList.add("uploading");
    box.hidden = false;
    if (cancel) cancel.hidden = false;
    input.disabled = true;
    const done = [];
    try {
      for (const file of files) {
        progress.max = 100;
        progress.value = 0;
        progress.hidden = false;
        dataStatus(`Uploading ${file.name}\u2026`);
        try {
          await uploadOne(file, replace, (fraction) => {
            progress.value = Math.round(100 * fraction);
            dataStatus(`Uploading ${file.name}\u2026 ${Math.round(100 * fraction)}%`);
          });
          done.push(file.name);
        } catch (err) {
          if (err.name === "AbortError") {
            dataStatus("Upload cancelled.");
            return;
          }
          if (err.status === 409) {
            const again = h("button", { type: "button", class: "btn", dataset: { fileAction: "replace-upload" } }, `Replace ${file.name}`);
            again.addEventListener("click", () => uploadDataFiles([file], true));
            dataError(`A data file named \u201c${file.name}\u201d exists already.`, again);
          } else {
            dataError(`Could not upload ${file.name}: ${err.message}`);
          }
        }
      }
    } finally {
      dataFilesEl.classList.remove("uploading");
      progress.hidden = true;
      if (cancel) cancel.hidden = true;
      input.disabled = false;
      input.value = "";
      if (done.length) dataStatus(`Uploaded ${done.join(", ")}.`);
      else if (!dataRole("data-upload-status").textContent.startsWith("Upload cancelled")) dataStatus("");
      try {
        await reloadDataFiles();
      } catch (err) {
        dataError(`Could not list the data files: ${err.message}`);
      }
    }
  }

  async function createDataFile(name) {
    dataError("");
    try {
      const made = await page.api("POST", "data", { name });
      const form = dataRole("data-new-form");
      if (form) {
        form.reset();
        form.hidden = true;
      }
      await reloadDataFiles();
      await openDataEditor(made.name || name);
    } catch (err) {
      dataError(`Could not create \u201c${name}\u201d: ${err.message}`);
    }
  }

  async function openDataEditor(name) {
    const box = dataRole("data-file-editor");
    if (!box) return;
    if (dataEditor && dataEditor.name !== name && dataEditorDirty() &&
        !window.confirm(`Discard the changes to ${dataEditor.name}?`)) return;
    dataError("");
    const text = dataRole("data-editor-text");
    let content;
    try {
      const resp = await fetch(dataFileUrl(name), { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) throw new ApiError(`${resp.status} ${resp.statusText || "error"}`, resp.status);
      const bytes = await resp.arrayBuffer();
      try {
        content = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        content = null;
      }
      if (content === null || content.includes("\u0000")) {
        dataError(`${name} is not a text file (UTF-8): it cannot be edited here.`);
        return;
      }
    } catch (err) {
      dataError(`Could not open ${name}: ${err.message}`);
      return;
    }
    dataEditor = { name, original: content };
    dataRole("data-editor-name").textContent = name;
    dataRole("data-editor-status").textContent = "";
    text.value = content;
    box.hidden = false;
    dataFilesEl.open = true;
    for (const li of dataFilesEl.querySelectorAll(".data-file")) li.classList.toggle("editing", li.dataset.name === name);
    text.focus();
  }

  function dataEditorDirty() {
    const text = dataRole("data-editor-text");
    return !!(dataEditor && text && text.value !== dataEditor.original);
  }

  async function saveDataEditor() {
    if (!dataEditor) return;
    const { name } = dataEditor;
    const content = dataRole("data-editor-text").value;
    const status = dataRole("data-editor-status");
    status.textContent = "Saving\u2026";
    dataError("");
    try {
      await page.api("PUT", `data/${encodeURIComponent(name)}`, { content });
      if (dataEditor && dataEditor.name === name) dataEditor.original = content;
      status.textContent = "Saved.";
      await reloadDataFiles();
    } catch (err) {
      status.textContent = "";
      dataError(`Could not save ${name}: ${err.message}`);
    }
  }

  function closeDataEditor(force = false) {
    if (!dataEditor) return;
    if (!force && dataEditorDirty() && !window.confirm(`Discard the changes to ${dataEditor.name}?`)) return;
    dataEditor = null;
    dataRole("data-file-editor").hidden = true;
    dataRole("data-editor-text").value = "";
    for (const li of dataFilesEl.querySelectorAll(".data-file.editing")) li.classList.remove("editing");
  }

  function startRename(li) {
    const name = li.dataset.name;
    if (li.querySelector("form")) return;
    const input = h("input", { type: "text", name: "name", class: "data-rename-input", maxlength: "200", "aria-label": `New name for ${name}` });
    input.value = name;
    const form = h("form", { class: "data-rename-form" }, input,
      h("button", { type: "submit", class: "btn btn-primary" }, "Rename"),
      h("button", { type: "button", class: "btn", dataset: { fileAction: "rename-cancel" } }, "Cancel"));
    const shown = Array.from(li.children);
    for (const c of shown) c.hidden = true;
    li.append(form);
    const restore = () => {
      form.remove();
      for (const c of shown) c.hidden = false;
    };
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const wanted = input.value.trim();
      if (!wanted || wanted === name) {
        restore();
        return;
      }
      dataError("");
      try {
        await page.api("POST", `data/${encodeURIComponent(name)}/rename`, { name: wanted });
        if (dataEditor && dataEditor.name === name) {
          dataEditor.name = wanted;
          dataRole("data-editor-name").textContent = wanted;
        }
        await reloadDataFiles();
      } catch (err) {
        dataError(`Could not rename ${name}: ${err.message}`);
        input.focus();
      }
    });
    form.addEventListener("click", (ev) => {
      if (ev.target.closest("[data-file-action=rename-cancel]")) restore();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        restore();
      }
    });
    input.focus();
    const dot = name.lastIndexOf(".");
    input.setSelectionRange(0, dot > 0 ? dot : name.length);
  }

  async function deleteDataFile(name) {
    if (!window.confirm(`Delete the data file ${name}?`)) return;
    dataError("");
    try {
      await page.api("DELETE", `data/${encodeURIComponent(name)}`);
      if (dataEditor && dataEditor.name === name) closeDataEditor(true);
      await reloadDataFiles();
    } catch (err) {
      dataError(`Could not delete ${name}: ${err.message}`);
    }
  }

  function wire() {
    const input = dataRole("data-upload-input");
    input.addEventListener("change", () => uploadDataFiles(input.files, dataRole("data-replace")?.checked));
    const newForm = dataRole("data-new-form");
    newForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = newForm.elements.name.value.trim();
      if (name) createDataFile(name);
    });
    newForm.elements.name.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        newForm.hidden = true;
      }
    });
    dataFilesEl.addEventListener("click", (ev) => {
      const btn = ev.target.closest("[data-file-action]");
      if (!btn || !dataFilesEl.contains(btn)) return;
      const li = btn.closest(".data-file");
      switch (btn.dataset.fileAction) {
        case "new":
          newForm.hidden = false;
          newForm.elements.name.focus();
          break;
        case "new-cancel":
          newForm.reset();
          newForm.hidden = true;
          break;
        case "cancel-upload":
          if (dataUpload) dataUpload.abort();
          break;
        case "edit": openDataEditor(btn.dataset.name); break;
        case "rename": if (li) startRename(li); break;
        case "delete": deleteDataFile(btn.dataset.name); break;
        case "editor-save": saveDataEditor(); break;
        case "editor-close": closeDataEditor(); break;
        default: return;
      }
      ev.preventDefault();
    });
    const text = dataRole("data-editor-text");
    text.addEventListener("keydown", (ev) => {
      if ((ev.ctrlKey || ev.metaKey) && (ev.key === "s" || ev.key === "S")) {
        ev.preventDefault();
        saveDataEditor();
      }
    });
    text.addEventListener("input", () => {
      dataRole("data-editor-status").textContent = dataEditorDirty() ? "modified" : "";
    });
    // Files dropped on the panel are uploaded.
    dataFilesEl.addEventListener("dragover", (ev) => {
      if (!ev.dataTransfer || !Array.from(ev.dataTransfer.types || []).includes("Files")) return;
      ev.preventDefault();
      dataFilesEl.classList.add("dragging");
    });
    dataFilesEl.addEventListener("dragleave", (ev) => {
      if (!dataFilesEl.contains(ev.relatedTarget)) dataFilesEl.classList.remove("dragging");
    });
    dataFilesEl.addEventListener("drop", (ev) => {
      dataFilesEl.classList.remove("dragging");
      if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
      ev.preventDefault();
      uploadDataFiles(ev.dataTransfer.files, dataRole("data-replace")?.checked);
    });
    window.addEventListener("beforeunload", (ev) => {
      if (dataEditorDirty() || dataUpload) {
        ev.preventDefault();
        ev.returnValue = "";
      }
    });
  }

  if (DATA_MANAGE) wire();
  return { render: renderDataFiles };
}
