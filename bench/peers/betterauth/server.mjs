// The peer bench/invitebench -peer measures Admit's single-address
// inviteUsers against: better-auth with its organization plugin on
// PostgreSQL through the pg Pool, email+password sign-in, served by
// better-auth's own Node handler. Configured the documented way; only what
// a benchmark needs differs from the defaults, each with a reason below.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/peer PORT=3000 node server.mjs
//
// It creates the tables with better-auth's migrations (what `auth migrate`
// runs), listens on 127.0.0.1:PORT and prints "ready" on stdout. The bench
// then signs up, signs in and creates the organization over HTTP like any
// client.
import http from "node:http";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { organization } from "better-auth/plugins/organization";
import pg from "pg";

const port = Number(process.env.PORT || 3000);
const baseURL = `http://127.0.0.1:${port}`;
if (!process.env.DATABASE_URL) {
  console.error("DATABASE_URL is required");
  process.exit(2);
}

let invitationsSent = 0;

const auth = betterAuth({
  baseURL,
  secret: process.env.BETTER_AUTH_SECRET || "invitebench-peer-fixed-secret-0123456789abcdef",
  // pg's Pool, as better-auth documents for PostgreSQL (default size 10).
  database: new pg.Pool({ connectionString: process.env.DATABASE_URL }),
  emailAndPassword: { enabled: true },
  // The bench sends thousands of calls a second from one address; Admit
  // has no rate limit on inviteUsers either.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [
    organization({
      // The default limit is 100 pending invitations per organization.
      // The check still runs on every call (it reads the pending
      // invitations, at most 100 rows through the adapter's findMany
      // default), it just never refuses.
      invitationLimit: Number.MAX_SAFE_INTEGER,
      // A no-op sender: Admit's log sender queues a message row in its
      // outbox inside the invitation's transaction and sends it later; here
      // nothing is stored or sent, which is less work than Admit does.
      async sendInvitationEmail() {
        invitationsSent++;
      },
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`ok ${invitationsSent}\n`);
    return;
  }
  handler(req, res);
});
server.keepAliveTimeout = 90_000;
server.listen(port, "127.0.0.1", () => {
  console.log(`ready ${baseURL}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    auth.options.database.end().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  });
}
