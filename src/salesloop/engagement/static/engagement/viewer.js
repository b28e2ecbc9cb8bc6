/* The tracked-document viewer (SPEC C3.4): counts the milliseconds this page is visible and
   reports the running total to the server. Heartbeats go out only while the page is visible;
   becoming hidden or leaving sends one last report by navigator.sendBeacon. The server adds the
   new part of the total, capped by the wall-clock time since the previous report, so nothing
   sent from here can add time that did not pass. */
(function () {
  "use strict";
  var root = document.getElementById("viewer");
  if (!root) return;
  var beatUrl = root.dataset.beatUrl;
  var viewKey = root.dataset.viewKey;
  if (!viewKey) return; // a colleague's preview: nothing is counted
  var interval = parseInt(root.dataset.beatMs, 10) || 5000;
  var counted = 0; // visible milliseconds up to `since`
  var since = document.visibilityState === "visible" ? performance.now() : null;

  function settle() {
    if (since !== null) {
      var now = performance.now();
      counted += now - since;
      since = now;
    }
  }

  function report(last) {
    settle();
    var body = new URLSearchParams();
    body.set("view_key", viewKey);
    body.set("visible_ms", String(Math.floor(counted)));
    if (last && navigator.sendBeacon && navigator.sendBeacon(beatUrl, body)) return;
    fetch(beatUrl, { method: "POST", body: body, credentials: "omit", keepalive: true }).catch(function () {});
  }

  setInterval(function () {
    if (document.visibilityState === "visible") report(false);
  }, interval);

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      if (since === null) since = performance.now();
    } else {
      settle();
      since = null;
      report(true);
    }
  });

  window.addEventListener("pagehide", function () {
    settle();
    since = null;
    report(true);
  });
})();
