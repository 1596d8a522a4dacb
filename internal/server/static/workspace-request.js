// The page the confirmation email links to: confirm the request (proving
// the address), then show it, and the workspace when viewing is allowed.
(function () {
  "use strict";
  var token = admit.token, $ = admit.$, gql = admit.gql, fail = admit.fail;
  var fields = "status email workspaceName organizationName workspace { name description members { name kind role status } }";

  function show(r) {
    $("title").textContent = "Your request to join " + r.workspaceName;
    var say = {
      PENDING: "Your address is confirmed. The workspace's owners will decide on your request.",
      APPROVED: "Your request was approved. Look for your invitation in your inbox.",
      DENIED: "Your request was declined.",
      CANCELLED: "You withdrew this request."
    };
    $("summary").textContent = say[r.status] || r.status;
    $("cancel").hidden = r.status !== "PENDING";
    var ws = r.workspace;
    $("workspace").hidden = !ws;
    if (!ws) { return; }
    $("wsname").textContent = ws.name;
    $("wsdescription").textContent = ws.description;
    var list = $("members");
    list.textContent = "";
    ws.members.forEach(function (m) {
      var li = document.createElement("li");
      li.textContent = m.name + (m.role === "OWNER" ? " (owner)" : "") + (m.kind === "CLIENT" ? ", client" : "");
      list.appendChild(li);
    });
  }

  gql("mutation($t: String!) { confirmJoinRequest(input: {token: $t}) { request { " + fields + " } errors { code message } } }", { t: token })
    .then(function (res) {
      if (res.errors) { fail(res.errors[0].message); $("summary").textContent = ""; return; }
      var r = res.data.confirmJoinRequest;
      if (r.errors.length) { fail(r.errors[0].message); $("summary").textContent = ""; return; }
      show(r.request);
    })
    .catch(function () { fail("Admit could not be reached. Try again later."); });

  $("cancel").addEventListener("submit", function (ev) {
    ev.preventDefault();
    gql("mutation($t: String!) { cancelJoinRequest(input: {token: $t}) { request { " + fields + " } errors { code message } } }", { t: token })
      .then(function (res) {
        if (res.errors) { fail(res.errors[0].message); return; }
        var r = res.data.cancelJoinRequest;
        if (r.errors.length) { fail(r.errors[0].message); return; }
        show(r.request);
      })
      .catch(function () { fail("Admit could not be reached. Try again later."); });
  });
})();
