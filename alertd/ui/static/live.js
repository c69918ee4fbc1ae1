// The trigger log, live: rows arrive over server-sent events as rendered HTML.
// New rows go on top; changed rows are replaced in place. Plus the copy button.
(function () {
  "use strict";
  var table = document.getElementById("log");
  var status = document.getElementById("live");
  if (table && window.EventSource) {
    var body = table.tBodies[0];
    var source = new EventSource(table.getAttribute("data-events"));
    source.addEventListener("open", function () { status.textContent = "Live: new notifications appear here."; });
    source.addEventListener("error", function () { status.textContent = "Live updates paused; reconnecting…"; });
    source.addEventListener("row", function (e) {
      var msg = JSON.parse(e.data);
      var tmp = document.createElement("tbody");
      tmp.innerHTML = msg.html;
      var row = tmp.firstElementChild;
      var old = document.getElementById("log-" + msg.id);
      if (old) {
        old.replaceWith(row);
      } else {
        var first = body.firstElementChild;
        while (first && +first.getAttribute("data-id") > msg.id) { first = first.nextElementSibling; }
        body.insertBefore(row, first);
        var empty = document.getElementById("empty");
        if (empty) { empty.remove(); }
      }
      row.classList.add("flash");
    });
  }
  var copy = document.getElementById("copy-key");
  if (copy) {
    copy.addEventListener("click", function () {
      var text = document.getElementById(copy.getAttribute("data-copy")).textContent;
      var done = function () { copy.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(); });
      } else { select(); }
      function select() {
        var range = document.createRange();
        range.selectNodeContents(document.getElementById(copy.getAttribute("data-copy")));
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        try { document.execCommand("copy"); done(); } catch (err) { copy.textContent = "Press Ctrl+C"; }
      }
    });
  }
})();
