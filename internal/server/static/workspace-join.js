// The workspace link page: show which workspace the link is for, then ask
// to join. The address is confirmed by email before approvers see the
// request.
(function () {
  "use strict";
  var token = admit.token, $ = admit.$, gql = admit.gql, fail = admit.fail;

  gql("query($t: String!) { workspaceLinkPreview(token: $t) { workspaceName organizationName allowsViewing } }", { t: token })
    .then(function (res) {
      if (res.errors) { fail(res.errors[0].message); $("summary").textContent = ""; return; }
      var p = res.data.workspaceLinkPreview;
      $("title").textContent = "Ask to join " + p.workspaceName;
      $("summary").textContent = "Ask to join the workspace " + p.workspaceName + " of " + p.organizationName +
        ". Its owners decide" + (p.allowsViewing ? "; while you wait, you can look inside." : ".");
      $("form").hidden = false;
    })
    .catch(function () { fail("Admit could not be reached. Try again later."); });

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    gql("mutation($in: RequestToJoinWorkspaceInput!) { requestToJoinWorkspace(input: $in) { message errors { code message } } }",
      { in: { token: token, email: $("email").value, name: $("name").value, message: $("note").value } })
      .then(function (res) {
        if (res.errors) { fail(res.errors[0].message); return; }
        var r = res.data.requestToJoinWorkspace;
        if (r.errors.length) { fail(r.errors[0].message); return; }
        $("form").hidden = true;
        $("message").className = "";
        $("message").textContent = r.message;
      })
      .catch(function () { fail("Admit could not be reached. Try again later."); });
  });
})();
