// The invite link page: show what the link is for, then ask to join. The
// address is confirmed by email before any account exists.
(function () {
  "use strict";
  var token = admit.token, $ = admit.$, gql = admit.gql, fail = admit.fail;

  gql("query($t: String!) { inviteLinkPreview(token: $t) { organizationName kind roleName restrictedToDomains domains expiresAt } }", { t: token })
    .then(function (res) {
      if (res.errors) { fail(res.errors[0].message); $("summary").textContent = ""; return; }
      var p = res.data.inviteLinkPreview;
      $("title").textContent = "Join " + p.organizationName;
      $("summary").textContent = "Join " + p.organizationName + (p.kind === "CLIENT" ? " as a client" : "") +
        (p.restrictedToDomains ? " with an address at " + p.domains.join(", ") : "") + ".";
      $("form").hidden = false;
    })
    .catch(function () { fail("Admit could not be reached. Try again later."); });

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    gql("mutation($in: JoinWithInviteLinkInput!) { joinWithInviteLink(input: $in) { message errors { code message } } }",
      { in: { token: token, email: $("email").value, name: $("name").value } })
      .then(function (res) {
        if (res.errors) { fail(res.errors[0].message); return; }
        var r = res.data.joinWithInviteLink;
        if (r.errors.length) { fail(r.errors[0].message); return; }
        $("form").hidden = true;
        $("message").className = "";
        $("message").textContent = r.message;
      })
      .catch(function () { fail("Admit could not be reached. Try again later."); });
  });
})();
