// Upload page: drag and drop onto the drop zone, or pick files; both feed the same <input type=file>.
// The server decides each file's type by its content and answers per file; this only lists what was chosen.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("files");
  var list = document.getElementById("file-list");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);

  function formatSize(bytes) {
    return bytes > 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.ceil(bytes / 1024) + " kB";
  }

  function showChosen() {
    list.textContent = "";
    var total = 0;
    Array.prototype.forEach.call(input.files, function (file) {
      total += file.size;
      var item = document.createElement("li");
      item.className = "file";
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      item.appendChild(name);
      item.appendChild(document.createTextNode(formatSize(file.size)));
      list.appendChild(item);
    });
    if (total > maxBytes) {
      var warning = document.createElement("li");
      warning.className = "file refused";
      warning.textContent = "Together these files exceed the " + formatSize(maxBytes) + " upload limit.";
      list.appendChild(warning);
    }
  }

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showChosen();
    }
  });
  zone.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  input.addEventListener("change", showChosen);
  form.addEventListener("submit", function () {
    var button = document.getElementById("submit");
    button.disabled = true;
    button.textContent = "Uploading…";
  });
})();
