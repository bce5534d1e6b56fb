// The wallet's only script: refresh the dynamic QR at each 30-second window, show a countdown
// and the current time (also as a watermark), and copy a share link. Everything works without it except the automatic refresh (a <noscript>
// meta refresh reloads the page instead).
(function () {
  "use strict";
  var img = document.getElementById("dynamic-qr");
  if (img) {
    var windowS = parseInt(img.getAttribute("data-window"), 10) || 30;
    var base = img.getAttribute("data-src");
    var counter = document.getElementById("dynamic-countdown");
    var bar = document.getElementById("dynamic-bar");
    var clock = document.getElementById("dynamic-clock");
    var watermark = document.getElementById("dynamic-watermark");
    // Beijing time as the holder reads it: 2026-01-31 09:05:07 (a screenshot shows when it was taken).
    var beijing = function (date) {
      return date.toLocaleString("sv-SE", { timeZone: "Asia/Shanghai", hour12: false });
    };
    var tick = function () {
      var nowMs = Date.now();
      var now = nowMs / 1000;
      var left = Math.ceil(windowS - (now % windowS));
      if (counter) { counter.textContent = String(left); counter.setAttribute("data-left", String(left)); }
      if (bar) { bar.style.width = Math.round(100 * left / windowS) + "%"; }
      var stamp = beijing(new Date(nowMs));
      if (clock) {
        clock.textContent = (clock.getAttribute("data-label") || "{at}").replace("{at}", stamp);
        clock.setAttribute("datetime", new Date(nowMs).toISOString());
      }
      if (watermark) { watermark.setAttribute("data-time", stamp); }
    };
    var refresh = function () {
      img.src = base + "?t=" + Date.now();
      schedule();
    };
    var schedule = function () {
      var now = Date.now() / 1000;
      var wait = (windowS - (now % windowS)) + 0.3;
      window.setTimeout(refresh, wait * 1000);
    };
    tick();
    window.setInterval(tick, 1000);
    schedule();
  }
  var buttons = document.querySelectorAll("[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) { return; }
      field.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(field.value); } else { document.execCommand("copy"); }
      button.textContent = document.documentElement.lang === "en" ? "Copied" : "已复制";
    });
  });
})();
