// Command importprof runs one importInvitations request against the admit
// HTTP handler built in process (the same internal/server handler the
// binary serves, wired as server.go wires it, minus the outbox worker), with
// a CPU profile around the request and every SQL statement counted and
// timed through a wrapping ent driver. It is the diagnostic companion of
// bench/invitebench: invitebench measures the real binary from outside,
// importprof shows where the time of one import goes.
//
//	go run ./bench/importprof -db sqlite -rows 10000 -prefill 40000 -cpuprofile /tmp/import.pprof
//	go tool pprof -top -nodecount=40 /tmp/import.pprof
//
// All traffic stays on 127.0.0.1 (httptest server). With -db postgres it
// creates a fresh database on -pg and drops it at the end.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"

	"admit/ent"
	_ "admit/ent/runtime" // registers the privacy policies and hooks
	"admit/internal/account"
	"admit/internal/db"
	"admit/internal/importfile"
	"admit/internal/invite"
	"admit/internal/pubsub"
	"admit/internal/secret"
	"admit/internal/server"
)

const (
	secretKey = "importprof-fixed-secret-key-0123456789abcdef"
	adminMail = "admin@bench.example.com"
	adminPass = "bench-password-123456"
)

// ---- a counting ent driver ----

type stat struct {
	n    int
	args int
	dur  time.Duration
}

type recorder struct {
	mu      sync.Mutex
	on      bool
	byShape map[string]*stat
	samples map[string]sample // first statement of each shape, for EXPLAIN
}

type sample struct {
	query string
	args  []any
}

var (
	rePg     = regexp.MustCompile(`\$\d+`)
	reList   = regexp.MustCompile(`\?(, \?)+`)
	reTuples = regexp.MustCompile(`\(\?…\)(, \(\?…\))+`)
)

func shape(q string) string {
	s := rePg.ReplaceAllString(q, "?")
	s = reList.ReplaceAllString(s, "?…")
	s = reTuples.ReplaceAllString(s, "(?…)…")
	s = strings.ReplaceAll(s, "`", "")
	s = strings.ReplaceAll(s, `"`, "")
	if len(s) > 230 {
		s = s[:230] + "…"
	}
	return s
}

func (r *recorder) add(q string, args any, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	sh := shape(q)
	st := r.byShape[sh]
	if st == nil {
		st = &stat{}
		r.byShape[sh] = st
	}
	st.n++
	st.dur += d
	if a, ok := args.([]any); ok {
		st.args += len(a)
		if _, seen := r.samples[sh]; !seen {
			r.samples[sh] = sample{q, append([]any(nil), a...)}
		}
	}
}

func (r *recorder) reset(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = on
	r.byShape = map[string]*stat{}
	r.samples = map[string]sample{}
}

type countingDriver struct {
	dialect.Driver
	rec *recorder
}

func (d countingDriver) Exec(ctx context.Context, q string, args, v any) error {
	t := time.Now()
	err := d.Driver.Exec(ctx, q, args, v)
	d.rec.add(q, args, time.Since(t))
	return err
}

// Query times the call only: rows are read afterwards by the caller.
func (d countingDriver) Query(ctx context.Context, q string, args, v any) error {
	t := time.Now()
	err := d.Driver.Query(ctx, q, args, v)
	d.rec.add(q, args, time.Since(t))
	return err
}

func (d countingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return countingTx{tx, d.rec}, nil
}

func (d countingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := d.Driver.(interface {
		BeginTx(context.Context, *sql.TxOptions) (dialect.Tx, error)
	}).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{tx, d.rec}, nil
}

type countingTx struct {
	dialect.Tx
	rec *recorder
}

func (t countingTx) Exec(ctx context.Context, q string, args, v any) error {
	s := time.Now()
	err := t.Tx.Exec(ctx, q, args, v)
	t.rec.add(q, args, time.Since(s))
	return err
}

func (t countingTx) Query(ctx context.Context, q string, args, v any) error {
	s := time.Now()
	err := t.Tx.Query(ctx, q, args, v)
	t.rec.add(q, args, time.Since(s))
	return err
}

func (t countingTx) Commit() error {
	s := time.Now()
	err := t.Tx.Commit()
	t.rec.add("COMMIT", nil, time.Since(s))
	return err
}

// QueryContext and ExecContext serve ent's execquery feature (the joined
// session lookup uses it); they are counted like the rest.
type rawQuerier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}

func (d countingDriver) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t := time.Now()
	rows, err := d.Driver.(rawQuerier).QueryContext(ctx, q, args...)
	d.rec.add(q, args, time.Since(t))
	return rows, err
}

func (d countingDriver) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	t := time.Now()
	res, err := d.Driver.(rawQuerier).ExecContext(ctx, q, args...)
	d.rec.add(q, args, time.Since(t))
	return res, err
}

func (t countingTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s := time.Now()
	rows, err := t.Tx.(rawQuerier).QueryContext(ctx, q, args...)
	t.rec.add(q, args, time.Since(s))
	return rows, err
}

func (t countingTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s := time.Now()
	res, err := t.Tx.(rawQuerier).ExecContext(ctx, q, args...)
	t.rec.add(q, args, time.Since(s))
	return res, err
}

// ---- main ----

func main() {
	// Output piped into head must not kill the run before it drops its
	// database: a write to a closed pipe then fails instead.
	signal.Ignore(syscall.SIGPIPE)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "importprof:", err)
		os.Exit(1)
	}
}

func run() error {
	kind := flag.String("db", "sqlite", "sqlite or postgres")
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server to create (and drop) a database on")
	rows := flag.Int("rows", 10000, "rows of the profiled import")
	prefill := flag.Int("prefill", 0, "rows to import first, unprofiled, in files of at most 10,000 (pending invitations already in the table)")
	dry := flag.Bool("dry", false, "profile a dryRun import")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the profiled import here")
	explain := flag.Bool("explain", true, "print the query plan of each SELECT/UPDATE shape on invitations and users")
	invites := flag.Int("invites", 0, "instead of an import, profile this many sequential single-address inviteUsers calls")
	analyzeFirst := flag.Bool("analyze", false, "run ANALYZE (planner statistics) after the prefill, before the profiled import")
	query := flag.String("query", "", "instead of an import, profile -repeat sequential runs of this GraphQL query (after -prefill invitations and -users users)")
	repeat := flag.Int("repeat", 200, "runs of -query")
	users := flag.Int("users", 0, "users to insert (plain INSERTs) before -query")
	heapprofile := flag.String("heapprofile", "", "write a heap profile of the idle handler (after sign-in) here and stop")
	wire := flag.Bool("wire", false, "with -db postgres, count the protocol messages (round trips) on the wire through a proxy")
	members := flag.Int("members", 0, "make a workspace with this many of the -users as members; $WS in -query stands for its ID")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "importprof-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	dbURL := filepath.Join(dir, "admit.db")
	wc := &wireCounter{}
	if *kind == "postgres" {
		admin, err := sql.Open("postgres", *pgURL)
		if err != nil {
			return err
		}
		defer admin.Close()
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		name := "admit_prof_" + hex.EncodeToString(b)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
			return err
		}
		defer func() {
			if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
				fmt.Fprintln(os.Stderr, "drop:", err)
			}
		}()
		u, err := url.Parse(*pgURL)
		if err != nil {
			return err
		}
		u.Path = "/" + name
		if *wire {
			addr, err := wc.listen(u.Host)
			if err != nil {
				return err
			}
			u.Host = addr
		}
		dbURL = u.String()
	} else if *kind != "sqlite" {
		return fmt.Errorf("-db %q: sqlite or postgres", *kind)
	}

	base, err := db.Open(dbURL)
	if err != nil {
		return err
	}
	defer base.Close()
	if err := base.Migrate(ctx, func(ctx context.Context) error {
		_, err := account.Bootstrap(ctx, base.Client, account.NewOrganization{Name: "Bench", AdminEmail: adminMail, AdminPassword: adminPass})
		return err
	}); err != nil {
		return err
	}
	rec := &recorder{}
	rec.reset(false)
	d := &db.DB{
		Client:     ent.NewClient(ent.Driver(countingDriver{entsql.OpenDB(base.Dialect, base.SQL), rec})),
		SQL:        base.SQL,
		Dialect:    base.Dialect,
		URL:        base.URL,
		SQLitePath: base.SQLitePath,
	}
	keys, err := secret.New(secretKey)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lim := server.DefaultLimits
	lim.MaxUploadBytes = 256 << 20
	h, err := server.New(server.Options{
		DB:           d,
		Accounts:     &account.Service{Dialect: d.Dialect, Keys: keys, SessionTTL: time.Hour, Now: time.Now},
		Invites:      &invite.Service{Keys: keys, Now: time.Now, Broker: pubsub.New(), ResendCooldown: time.Minute, Dialect: d.Dialect},
		Broker:       pubsub.New(),
		ImportLimits: importfile.Limits{MaxBytes: 200 << 20, MaxRows: 1_000_000},
		Log:          log,
		Limits:       lim,
	})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(h) // 127.0.0.1
	defer ts.Close()

	token, err := signIn(ctx, ts.URL)
	if err != nil {
		return err
	}
	if *heapprofile != "" {
		runtime.GC()
		f, err := os.Create(*heapprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.WriteHeapProfile(f)
	}
	for done := 0; done < *prefill; {
		n := min(10000, *prefill-done)
		if _, _, err := importFile(ctx, ts.URL, token, fmt.Sprintf("pre%d", done), n, false); err != nil {
			return err
		}
		done += n
	}
	if *users > 0 {
		if err := insertUsers(ctx, base, *users); err != nil {
			return err
		}
	}
	if *members > 0 {
		ws, err := insertWorkspace(ctx, base, *members)
		if err != nil {
			return err
		}
		*query = strings.ReplaceAll(*query, "$WS", fmt.Sprint(ws))
	}
	if *analyzeFirst {
		if _, err := base.SQL.ExecContext(ctx, "ANALYZE"); err != nil {
			return fmt.Errorf("ANALYZE: %w", err)
		}
	}
	fmt.Printf("database %s, %d pending invitations already in the table, ANALYZE run: %v\n\n", *kind, *prefill, *analyzeFirst)

	rec.reset(true)
	wc.on.Store(true)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	var invited int
	var wall time.Duration
	if *query != "" {
		start := time.Now()
		cpu0 := processCPU()
		defer func() {
			fmt.Printf("process CPU (server and client in this process): %v a run\n", ((processCPU() - cpu0) / time.Duration(*repeat)).Round(10*time.Microsecond))
		}()
		for range *repeat {
			if err = gql(ctx, ts.URL, token, *query, nil, nil); err != nil {
				break
			}
		}
		wall = time.Since(start)
	} else if *invites > 0 {
		start := time.Now()
		for i := range *invites {
			var out struct {
				InviteUsers struct {
					Counts struct {
						Invited int `json:"invited"`
					} `json:"counts"`
				} `json:"inviteUsers"`
			}
			err = gql(ctx, ts.URL, token, `mutation($e: [String!]!) { inviteUsers(input: {emails: $e}) { counts { invited } errors { code message } } }`,
				map[string]any{"e": []string{fmt.Sprintf("one-%06d@bench.example.com", i)}}, &out)
			if err != nil {
				break
			}
			invited += out.InviteUsers.Counts.Invited
		}
		wall = time.Since(start)
	} else {
		invited, wall, err = importFile(ctx, ts.URL, token, "prof", *rows, *dry)
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	rec.mu.Lock()
	rec.on = false
	rec.mu.Unlock()
	wc.on.Store(false)
	if *wire {
		calls := max(*invites, 1)
		if *query != "" {
			calls = *repeat
		}
		wc.mu.Lock()
		m := wc.count
		fmt.Printf("on the wire, per call: %.1f round trips (Sync %.1f + simple Query %.1f); Parse %.1f, Bind %.1f, Execute %.1f\n\n",
			float64(m['S']+m['Q'])/float64(calls), float64(m['S'])/float64(calls), float64(m['Q'])/float64(calls),
			float64(m['P'])/float64(calls), float64(m['B'])/float64(calls), float64(m['E'])/float64(calls))
		wc.mu.Unlock()
	}
	if err != nil {
		return err
	}
	if *query != "" {
		fmt.Printf("query: %d sequential runs, %v wall clock, %v a run\n\n", *repeat, wall.Round(time.Millisecond), (wall / time.Duration(*repeat)).Round(10*time.Microsecond))
	} else if *invites > 0 {
		fmt.Printf("inviteUsers: %d sequential calls, %d invited, %v wall clock, %v a call\n\n", *invites, invited, wall.Round(time.Millisecond), (wall / time.Duration(*invites)).Round(10*time.Microsecond))
	} else {
		fmt.Printf("importInvitations (dryRun %v): %d rows, %d invited, %v wall clock\n\n", *dry, *rows, invited, wall.Round(time.Millisecond))
	}

	type row struct {
		sh string
		st *stat
	}
	var all []row
	total := stat{}
	for sh, st := range rec.byShape {
		all = append(all, row{sh, st})
		total.n += st.n
		total.dur += st.dur
		total.args += st.args
	}
	sort.Slice(all, func(i, j int) bool { return all[i].st.dur > all[j].st.dur })
	fmt.Printf("SQL statements: %d, %d bound arguments, %v inside driver calls (%.0f%% of the wall clock)\n\n",
		total.n, total.args, total.dur.Round(time.Millisecond), 100*total.dur.Seconds()/wall.Seconds())
	fmt.Println("| statements | args | time in driver | statement (placeholders collapsed) |")
	fmt.Println("|---:|---:|---:|---|")
	for _, r := range all {
		fmt.Printf("| %d | %d | %v | `%s` |\n", r.st.n, r.st.args, r.st.dur.Round(100*time.Microsecond), r.sh)
	}
	fmt.Println()
	if *explain {
		for _, r := range all {
			s := rec.samples[r.sh]
			up := strings.ToUpper(s.query)
			if !(strings.HasPrefix(up, "SELECT") || strings.HasPrefix(up, "UPDATE")) ||
				!(strings.Contains(up, "INVITATIONS") || strings.Contains(up, "USERS")) {
				continue
			}
			plan, err := explainPlan(ctx, base, s)
			if err != nil {
				fmt.Printf("plan of `%.100s…`: %v\n\n", r.sh, err)
				continue
			}
			fmt.Printf("plan of `%.160s`:\n\n```\n%s```\n\n", r.sh, plan)
		}
	}
	return nil
}

// explainPlan asks the database how it runs a recorded statement, with the
// same arguments, inside a transaction that is rolled back.
func explainPlan(ctx context.Context, d *db.DB, s sample) (string, error) {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck
	prefix := "EXPLAIN "
	if d.Dialect == dialect.SQLite {
		prefix = "EXPLAIN QUERY PLAN "
	}
	rows, err := tx.QueryContext(ctx, prefix+s.query, s.args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		// SQLite: id, parent, notused, detail; PostgreSQL: one text column.
		line := fmt.Sprint(vals[len(vals)-1])
		if len(line) > 160 {
			line = line[:160] + "…"
		}
		b.WriteString(line + "\n")
	}
	return b.String(), rows.Err()
}

// ---- HTTP ----

func gql(ctx context.Context, base, token, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []any           `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Errors) > 0 {
		return fmt.Errorf("HTTP %d: %.300s", rsp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}

func signIn(ctx context.Context, base string) (string, error) {
	var out struct {
		SignIn struct {
			Token *string `json:"token"`
		} `json:"signIn"`
	}
	if err := gql(ctx, base, "", `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }`,
		map[string]any{"e": adminMail, "p": adminPass}, &out); err != nil {
		return "", err
	}
	if out.SignIn.Token == nil {
		return "", fmt.Errorf("signIn: no token")
	}
	return *out.SignIn.Token, nil
}

func importFile(ctx context.Context, base, token, prefix string, n int, dry bool) (int, time.Duration, error) {
	var csv strings.Builder
	csv.WriteString("email\n")
	for i := range n {
		fmt.Fprintf(&csv, "%s-%06d@bench.example.com\n", prefix, i)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($f: Upload!, $d: Boolean) { importInvitations(input: {file: $f, dryRun: $d}) { counts { invited } errors { code message } } }`,
		"variables": map[string]any{"f": nil, "d": dry},
	})
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0":["variables.f"]}`)
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="0"; filename="list.csv"`)
	hdr.Set("Content-Type", "text/csv")
	part, _ := w.CreatePart(hdr)
	_, _ = io.WriteString(part, csv.String())
	_ = w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	b, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	wall := time.Since(start)
	var r struct {
		Data struct {
			ImportInvitations struct {
				Counts struct {
					Invited int `json:"invited"`
				} `json:"counts"`
				Errors []any `json:"errors"`
			} `json:"importInvitations"`
		} `json:"data"`
		Errors []any `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil || len(r.Errors) > 0 || len(r.Data.ImportInvitations.Errors) > 0 {
		return 0, 0, fmt.Errorf("import: HTTP %d: %.300s", rsp.StatusCode, b)
	}
	if got := r.Data.ImportInvitations.Counts.Invited; got != n {
		return got, wall, fmt.Errorf("import %s: invited %d of %d", prefix, got, n)
	}
	return n, wall, nil
}

// insertUsers adds n active users with the Member role to the bootstrap
// organization, for list queries.
func insertUsers(ctx context.Context, d *db.DB, n int) error {
	ph := func(i int) string {
		if d.Dialect == dialect.Postgres {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	var org, role int
	if err := d.SQL.QueryRowContext(ctx, "SELECT o.id, r.id FROM organizations o JOIN roles r ON r.organization_id = o.id AND r.builtin AND NOT r.admin").Scan(&org, &role); err != nil {
		return err
	}
	now := time.Now()
	for i := range n {
		if _, err := d.SQL.ExecContext(ctx, "INSERT INTO users (created_at, updated_at, name, email, kind, status, organization_id, role_id) VALUES ("+
			ph(1)+", "+ph(2)+", "+ph(3)+", "+ph(4)+", 'INTERNAL', 'ACTIVE', "+ph(5)+", "+ph(6)+")", now, now, fmt.Sprintf("User %d", i), fmt.Sprintf("user-%06d@bench.example.com", i), org, role); err != nil {
			return err
		}
	}
	return nil
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// insertWorkspace makes a workspace whose members are the first n users
// other than the admin, and returns its ID.
func insertWorkspace(ctx context.Context, d *db.DB, n int) (int, error) {
	ph := func(i int) string {
		if d.Dialect == dialect.Postgres {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	var org int
	if err := d.SQL.QueryRowContext(ctx, "SELECT id FROM organizations").Scan(&org); err != nil {
		return 0, err
	}
	now := time.Now()
	var ws int
	if err := d.SQL.QueryRowContext(ctx, "INSERT INTO workspaces (created_at, updated_at, name, type, description, link_enabled, link_allows_viewing, link_generation, organization_id) VALUES ("+
		ph(1)+", "+ph(2)+", 'W', 'GROUP', '', false, false, 0, "+ph(3)+") RETURNING id", now, now, org).Scan(&ws); err != nil {
		return 0, err
	}
	_, err := d.SQL.ExecContext(ctx, "INSERT INTO memberships (created_at, updated_at, role, status, organization_id, workspace_id, user_id) SELECT "+
		ph(1)+", "+ph(2)+", 'MEMBER', 'JOINED', organization_id, "+ph(3)+", id FROM users WHERE email LIKE 'user-%' ORDER BY id LIMIT "+fmt.Sprint(n), now, now, ws)
	return ws, err
}
