// Admin pages: ask before destructive actions (forms with data-confirm).  The pages
// work without this script; it only adds the confirmation.
document.addEventListener('submit', function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute('data-confirm');
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// The heir field matters only when the worksheets are handed over.
(function () {
  var form = document.getElementById('delete-user');
  if (!form) return;
  var heir = form.querySelector('input[name=heir]');
  function sync() {
    var handover = form.querySelector('input[name=worksheets][value=handover]').checked;
    heir.required = handover;
    heir.disabled = !handover;
  }
  form.addEventListener('change', sync);
  sync();
})();
