// Admit's GraphiQL: queries and mutations over HTTP, subscriptions over the
// websocket (graphql-transport-ws). The Headers tab is the session: its
// Authorization header goes with every HTTP request and, as the
// connection_init payload, with the websocket, which is opened again when
// the headers change. Headers are kept only if the user turns on GraphiQL's
// "persist headers" setting.
(function () {
  "use strict";
  var httpURL = location.origin + "/query";
  var wsURL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/query";
  var current = { key: null, fetcher: null, client: null };

  function fetcherFor(headers) {
    var key = JSON.stringify(headers || {});
    if (current.key !== key) {
      if (current.client) { current.client.dispose(); }
      var client = graphqlWs.createClient({
        url: wsURL,
        lazy: true,
        connectionParams: function () { return headers || {}; }
      });
      current = { key: key, client: client, fetcher: GraphiQL.createFetcher({ url: httpURL, wsClient: client }) };
    }
    return current.fetcher;
  }

  var initialQuery = [
    "# Sign in first, then put the token in the Headers tab below:",
    "#   {\"Authorization\": \"Bearer <token>\"}",
    "",
    "mutation SignIn {",
    "  signIn(input: {email: \"admin@example.com\", password: \"<password>\"}) {",
    "    token",
    "    errors { code message }",
    "  }",
    "}",
    "",
    "query Me {",
    "  me { name email role { name } organization { name } }",
    "}",
    ""
  ].join("\n");

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher: function (params, opts) { return fetcherFor(opts && opts.headers)(params, opts); },
    defaultQuery: initialQuery,
    defaultEditorToolsVisibility: true,
    shouldPersistHeaders: false
  }));
})();
