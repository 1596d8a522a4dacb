// Shared by Admit's public pages: a GraphQL call and an error line.
var admit = (function () {
  "use strict";
  return {
    $: function (id) { return document.getElementById(id); },
    token: new URLSearchParams(location.search).get("token") || "",
    // gql runs an operation, as the session token when one is given.
    gql: function (query, variables, session) {
      var headers = { "Content-Type": "application/json" };
      if (session) { headers.Authorization = "Bearer " + session; }
      return fetch("/query", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ query: query, variables: variables })
      }).then(function (r) { return r.json(); });
    },
    fail: function (text) {
      var m = document.getElementById("message");
      m.textContent = text;
      m.className = "error";
    }
  };
})();
