// The newsletter's sign-up form (GET /newsletter): solves the proof of work with the
// browser's own SHA-256 and posts the form as JSON. It only ever inserts text.
(function () {
  "use strict";
  var form = document.getElementById("newsletter");
  if (!form) return;
  var status = document.getElementById("status");
  function say(text) { status.textContent = text; }
  function zeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      return bits + Math.clz32(bytes[i]) - 24;
    }
    return bits;
  }
  async function solve(challenge, email, bits) {
    var encoder = new TextEncoder();
    for (var n = 0; ; n++) {
      var nonce = n.toString(16);
      var digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + email + ":" + nonce)));
      if (zeroBits(digest) >= bits) return nonce;
    }
  }
  function checked(name) {
    return Array.prototype.map.call(form.querySelectorAll("input[name=" + name + "]:checked"), function (i) { return i.value; });
  }
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    say(form.dataset.working);
    try {
      var email = form.elements.email.value;
      var challenge = await (await fetch(form.dataset.challenge, { cache: "no-store" })).json();
      var nonce = challenge.bits ? await solve(challenge.challenge, email, challenge.bits) : "0";
      var languages = checked("languages");
      var body = {
        email: email,
        languages: languages.length ? languages : [document.documentElement.lang],
        categories: checked("categories"),
        cadence: (checked("cadence")[0] || "weekly"),
        proof: { challenge: challenge.challenge, nonce: nonce },
        website: form.elements.website.value
      };
      var answer = await fetch(form.action, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      });
      if (answer.status === 202) {
        say(form.dataset.sent);
      } else {
        var problem = {};
        try { problem = await answer.json(); } catch (e) { /* not JSON */ }
        say(form.dataset.failed.replace("{reason}", problem.detail || answer.statusText));
      }
    } catch (error) {
      say(form.dataset.failed.replace("{reason}", String(error)));
    } finally {
      button.disabled = false;
    }
  });
})();
