// The frame HTML outputs are drawn in (served by csp.py at /_frame, sandboxed without
// allow-same-origin: an opaque origin, without the viewer's cookies).  The page sends
// the output's HTML once; it is written as this frame's document, scripts included, and
// the frame then tells the page its height.
(function () {
  "use strict";
  var written = false;
  function report() {
    var d = document.documentElement;
    var height = Math.ceil(Math.max(d.getBoundingClientRect().height,
                                    document.body ? document.body.scrollHeight : 0));
    if (height !== report.last) {
      report.last = height;
      parent.postMessage({ sagenbFrameHeight: height }, "*");
    }
  }
  function onMessage(event) {
    var data = event.data;
    if (written || event.source !== parent || !data || typeof data.sagenbFrameHtml !== "string") return;
    written = true;
    window.removeEventListener("message", onMessage);
    document.open();
    document.write(data.sagenbFrameHtml);
    document.close();
    window.addEventListener("load", report);
    if (window.ResizeObserver) new ResizeObserver(report).observe(document.documentElement);
    setTimeout(report, 0);
    setTimeout(report, 500);
  }
  window.addEventListener("message", onMessage);
  parent.postMessage({ sagenbFrameReady: true }, "*");
})();
