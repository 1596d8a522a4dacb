// The page a password reset email links to: set the new password with the
// token in the link. Every session of the account ends; sign in again.
(function () {
  "use strict";
  var token = admit.token, $ = admit.$, gql = admit.gql, fail = admit.fail;
  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    gql("mutation($in: ResetPasswordInput!) { resetPassword(input: $in) { done errors { code message } } }",
      { in: { token: token, password: $("password").value } })
      .then(function (res) {
        if (res.errors) { fail(res.errors[0].message); return; }
        var r = res.data.resetPassword;
        if (r.errors.length) { fail(r.errors[0].message); return; }
        $("form").hidden = true;
        $("message").className = "";
        $("message").textContent = "Your password is changed. Sign in with it; every earlier session has ended.";
      })
      .catch(function () { fail("Admit could not be reached. Try again later."); });
  });
})();
