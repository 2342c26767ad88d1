// Result page: switch the viewer between outlines, heatmap and the original rendering.
(function () {
  "use strict";
  var viewer = document.getElementById("viewer");
  if (!viewer) { return; }
  var image = document.getElementById("viewer-image");
  var buttons = viewer.querySelectorAll(".switcher button");
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      Array.prototype.forEach.call(buttons, function (other) { other.classList.remove("active"); });
      button.classList.add("active");
      image.src = button.getAttribute("data-src");
      image.alt = "Image: " + button.textContent.toLowerCase();
    });
  });
})();
