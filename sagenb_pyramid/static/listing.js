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
