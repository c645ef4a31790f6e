// guichet — progressive enhancement only: every page works without it.
// Large uploads (over 512 KB) in the guided form show their progress.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!window.XMLHttpRequest || !window.FormData || form.enctype !== "multipart/form-data") return;
    var total = 0;
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      for (var i = 0; i < input.files.length; i++) total += input.files[i].size;
    });
    if (total < 524288) return;
    event.preventDefault();
    var progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.id = "televersement";
    var status = document.createElement("p");
    status.setAttribute("role", "status");
    var label = document.documentElement.lang === "en" ? "Uploading: " : "Téléversement : ";
    status.textContent = label + "0 %";
    var actions = form.querySelector(".actions") || form;
    actions.appendChild(progress);
    actions.appendChild(status);
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      progress.value = pct;
      status.textContent = label + pct + " %";
    };
    xhr.onload = function () {
      // Success ends on the next page (the redirect was followed); an
      // error page replaces this one, as a normal submit would.
      if (xhr.status < 300 && xhr.responseURL && xhr.responseURL !== form.action) {
        window.location.assign(xhr.responseURL);
      } else {
        document.open();
        document.write(xhr.responseText);
        document.close();
      }
    };
    xhr.onerror = function () { form.submit(); };
    xhr.send(new FormData(form));
  });
})();
