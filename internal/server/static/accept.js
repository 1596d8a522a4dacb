// The invitation landing page: preview the invitation, then accept it,
// through the same GraphQL API every client uses.
(function () {
  "use strict";
  var token = admit.token, $ = admit.$, gql = admit.gql, fail = admit.fail, isPhone = false;

  gql("query($t: String!) { invitationPreview(token: $t) { organizationName inviterName roleName workspaceName email phone status expiresAt } }", { t: token })
    .then(function (res) {
      if (res.errors) { fail(res.errors[0].message); $("summary").textContent = ""; return; }
      var p = res.data.invitationPreview;
      $("title").textContent = "Join " + p.organizationName;
      var who = p.inviterName ? p.inviterName + " invited " : "You are invited: ";
      // An invitation sent by SMS makes an account for the phone number;
      // the invitee may give it an address too.
      isPhone = !p.email && !!p.phone;
      $("email-field").hidden = !isPhone;
      $("summary").textContent = who + (p.email || p.phone || "you") + " to join " + p.organizationName +
        (p.workspaceName ? " (workspace " + p.workspaceName + ")" : "") + " as " + p.roleName + ".";
      if (p.status === "EXPIRED") { fail("This invitation has expired; ask for it to be sent again."); return; }
      $("form").hidden = false;
    })
    .catch(function () { fail("Admit could not be reached. Try again later."); });

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    gql("mutation($in: AcceptInvitationInput!) { acceptInvitation(input: $in) { token user { email } errors { code message } } }",
      { in: { token: token, name: $("name").value, password: $("password").value, email: isPhone ? $("email").value : null } })
      .then(function (res) {
        if (res.errors) { fail(res.errors[0].message); return; }
        var r = res.data.acceptInvitation;
        if (r.errors.length) { fail(r.errors[0].message); return; }
        $("form").hidden = true;
        // Accepting signed the new account in: show it with its session.
        return gql("query { me { name email phone organization { name } } }", {}, r.token).then(function (me) {
          if (me.errors) { fail(me.errors[0].message); return; }
          $("message").className = "";
          $("message").textContent = "Welcome, " + me.data.me.name + "! You are signed in to " +
            me.data.me.organization.name + " as " + (me.data.me.email || me.data.me.phone) + ".";
        });
      })
      .catch(function () { fail("Admit could not be reached. Try again later."); });
  });
})();
