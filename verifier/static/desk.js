// The front desk (verifier/api/desk.py): camera scanning with jsQR (npm, served by this node at
// /desk/jsqr.js?v=<hash>, gzipped, and loaded only when the camera starts), and a code field that a USB scanner
// (keyboard wedge) fills and submits with its Enter. Photos and PDFs go up with the plain form.
(function () {
  "use strict";
  var KEY = "deskScanAt";
  var verdict = document.querySelector("[data-verdict]");
  var started = Number(sessionStorage.getItem(KEY) || 0);
  sessionStorage.removeItem(KEY);
  if (verdict && started) {
    // from the QR decoded in the page to the verdict shown (the frame that paints it): measured by
    // the browser tests
    var reading = sessionStorage.getItem(KEY + "Reading");
    sessionStorage.removeItem(KEY + "Reading");
    requestAnimationFrame(function () {
      var root = document.documentElement;
      root.setAttribute("data-scan-to-verdict-ms", String(Date.now() - started));
      if (reading) root.setAttribute("data-camera-to-scan", reading); // "ms frames": camera on to QR read
    });
  }
  var codeForm = document.getElementById("code-form");
  if (!codeForm) return;
  var code = codeForm.elements.code;
  var status = document.getElementById("desk-status");
  function busy() { if (status) status.hidden = false; }
  codeForm.addEventListener("submit", busy);
  var upload = document.getElementById("upload-form");
  if (upload) upload.addEventListener("submit", busy);
  if (window.matchMedia && window.matchMedia("(pointer: fine)").matches) code.focus({ preventScroll: !!verdict });
  var again = document.getElementById("again");
  if (again) again.addEventListener("click", function () { code.focus(); });

  var way = document.getElementById("camera-way");
  if (!way || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  way.hidden = false;
  var button = document.getElementById("camera-start");
  var video = document.getElementById("camera-video");
  var hint = document.getElementById("camera-hint");
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  var stream = null;

  function loadDecoder() {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) return resolve(window.jsQR);
      var script = document.createElement("script");
      script.src = button.getAttribute("data-decoder") || "/desk/jsqr.js"; // ?v=<hash>: cached for a year
      script.onload = function () { resolve(window.jsQR); };
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }
  function stop() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.hidden = true;
    hint.hidden = true;
    button.textContent = button.getAttribute("data-start");
  }
  var cameraAt = 0;
  function found(text) {
    sessionStorage.setItem(KEY, String(Date.now()));
    sessionStorage.setItem(KEY + "Reading", (Date.now() - cameraAt) + " " + frames);
    stop();
    code.value = text;
    busy();
    codeForm.submit();
  }
  // One frame: the centre square first (where the clerk holds the licence; fewer pixels, so a
  // phone decodes it sooner), and every third frame the whole picture for a code held off-centre.
  // The frame keeps the camera's own resolution: a dense EC1 code needs every pixel.
  var frames = 0;
  function read(decode) {
    var width = video.videoWidth, height = video.videoHeight;
    var side = Math.min(width, height);
    var whole = frames++ % 3 === 2;
    var sx = whole ? 0 : Math.floor((width - side) / 2), sy = whole ? 0 : Math.floor((height - side) / 2);
    var sw = whole ? width : side, sh = whole ? height : side;
    if (canvas.width !== sw || canvas.height !== sh) { canvas.width = sw; canvas.height = sh; }
    context.drawImage(video, sx, sy, sw, sh, 0, 0, sw, sh);
    var image = context.getImageData(0, 0, sw, sh);
    return decode(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
  }
  function scan(decode) {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth && video.videoHeight) {
      var qr = read(decode);
      if (qr && /^(EC1:|https?:\/\/)/i.test(qr.data)) return found(qr.data);
    }
    requestAnimationFrame(function () { scan(decode); });
  }
  button.addEventListener("click", function () {
    if (stream) return stop();
    cameraAt = Date.now();
    frames = 0;
    Promise.all([loadDecoder(), navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false })])
      .then(function (got) {
        stream = got[1];
        video.srcObject = stream;
        video.hidden = false;
        hint.hidden = false;
        button.textContent = button.getAttribute("data-stop");
        return video.play().then(function () { scan(got[0]); });
      })
      .catch(function () {
        stop();
        hint.textContent = button.getAttribute("data-denied");
        hint.hidden = false;
      });
  });
})();
