// Wharf studio: behaviour shared by every page. Pages work without it;
// it only saves a click or keeps a view current.
(function () {
  "use strict";
  // A <select data-autosubmit> submits its form when changed; the form's
  // own button stays for keyboards and for browsers without scripts.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) {
      el.form.submit();
    }
  });
  // csrf returns the session's CSRF token for requests a script makes.
  window.wharfCSRF = function () {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  };
})();
