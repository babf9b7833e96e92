// Live updates: after each reconcile pass the server sends `pass`; the live part of the page is
// fetched again and swapped in (the page works without this script, by reloading).
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var es = new EventSource("/ui/events");
  // Never swap out a form someone is filling in.
  function editing() {
    var a = document.activeElement;
    if (a && live.contains(a) && a.tagName === "INPUT") return true;
    var inputs = live.querySelectorAll("input[type=text], input[type=number]");
    for (var i = 0; i < inputs.length; i++) if (inputs[i].value) return true;
    return false;
  }
  es.addEventListener("pass", function () {
    if (editing()) return;
    var url = location.pathname + (location.search ? location.search + "&" : "?") + "fragment=1";
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; });
  });
})();
