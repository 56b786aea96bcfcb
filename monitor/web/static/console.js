/* 舆情哨兵 console: the few behaviours that need script. A file, not inline script (the CSP forbids inline). */
(function () {
  "use strict";

  // Copy buttons: <button data-copy="ID"> copies the text of element #ID (reply templates).
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (a console on the LAN) has no clipboard API: the old way still works there.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      try {
        if (document.execCommand("copy")) { resolve(); } else { reject(new Error("copy refused")); }
      } catch (err) {
        reject(err);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copyText(source.textContent).then(function () {
      button.textContent = "已复制";
      button.setAttribute("data-copied", "true");
    }, function () {
      button.textContent = "复制失败，请长按文字复制";
    }).then(function () {
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });

  // The page link's ?ack=1: bring the 确认处理 button into view (autofocus focuses it, not always in view).
  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("[data-focus-on-load]");
    if (target) {
      target.scrollIntoView({block: "center"});
      target.focus({preventScroll: true});
    }
  });
})();
