// The wallet's only script: refresh the dynamic QR at each 30-second window, show a countdown,
// and copy a share link. Everything works without it except the automatic refresh (a <noscript>
// meta refresh reloads the page instead).
(function () {
  "use strict";
  var img = document.getElementById("dynamic-qr");
  if (img) {
    var windowS = parseInt(img.getAttribute("data-window"), 10) || 30;
    var base = img.getAttribute("data-src");
    var caption = document.getElementById("dynamic-countdown");
    var template = document.documentElement.lang === "en" ? "Changes in {s} s" : "{s} 秒后更换";
    var tick = function () {
      var now = Date.now() / 1000;
      var left = Math.ceil(windowS - (now % windowS));
      if (caption) { caption.textContent = template.replace("{s}", String(left)); }
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
