// The page of a verification link <node>/v#EC1:… (verifier/api/scan.py). The certificate is in
// the link's fragment, which the browser never sends to a server: read it here, drop it from the
// address bar and the history, and post it with the page's form, whose answer is the verdict.
(function () {
  "use strict";
  var form = document.getElementById("scan-form");
  if (!form || location.hash.length < 2) return;
  var code;
  try {
    code = decodeURIComponent(location.hash.slice(1)); // the link percent-encodes space and '%'
  } catch (e) {
    return; // a broken escape: leave the form to the visitor
  }
  history.replaceState(null, "", location.pathname + location.search);
  if (code.indexOf("EC1:") !== 0) return;
  form.elements.code.value = code;
  document.getElementById("scan-status").hidden = false;
  form.submit();
})();
