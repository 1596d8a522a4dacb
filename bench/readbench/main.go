//go:build linux

// Command readbench measures Admit's read path against a hand-written
// handler serving the same rows and fields, side by side in one run:
// invitations(first: 100) with each invitation's role and inviter,
// users(first: 100) with each user's role, and workspace(id) { members(first:
// 100) } with each member's user and role.
//
//	go build -o /tmp/admit . && go run ./bench/readbench -bin /tmp/admit -db sqlite,postgres
//
// For each database it starts the real admit binary (-bin) on a fresh
// database (a temp SQLite file, or a new PostgreSQL database dropped at the
// end), fills it (invitations through importInvitations, users, a
// workspace and its memberships with plain INSERTs), and starts the
// hand-written handler (baseline.go) as a second child process on the same
// database. Then, for each query and round, it runs -clients concurrent
// clients for -duration against Admit and then against the handler, and
// reports requests/s, p50/p99 latency and the CPU time each server process
// used per request (utime+stime from /proc/<pid>/stat), plus PostgreSQL's
// backends. See BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	dbs         []string
	pg          string
	bin         string
	clients     int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	invitations int
	users       int
	members     int
	queries     []string
	footprint   bool
	signIns     int
	settle      time.Duration
	bins        []string
}

func main() {
	if os.Getenv(envBaselineAddr) != "" {
		if err := runBaseline(); err != nil {
			fmt.Fprintln(os.Stderr, "readbench baseline:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "readbench:", err)
		os.Exit(2)
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := os.Stat(o.bin); err != nil {
		fmt.Fprintf(os.Stderr, "readbench: no server binary at %s (%v); build it first: go build -o %s .\n", o.bin, err, o.bin)
		os.Exit(2)
	}
	if o.footprint {
		fmt.Println("| database | VmRSS at ready | 1 s after one sign-in | burst | right after | each second after |")
		fmt.Println("|---|---:|---:|---|---:|---|")
		for _, kind := range o.dbs {
			if err := footprint(ctx, o, kind); err != nil {
				logf("%s: FAILED: %v", kind, err)
				os.Exit(1)
			}
		}
		return
	}
	if len(o.bins) > 0 {
		fmt.Printf("saturation mix: %d clients, each in turn inviteUsers (1 new address), a list (invitations or users, first: 100), me; %v after %v warm-up\n\n", o.clients, o.duration, o.warmup)
		fmt.Println("| database | binary | clients | all | by kind | CPU | errors | outbox backlog after | load |")
		fmt.Println("|---|---|---:|---|---|---|---|---:|---:|")
		for _, kind := range o.dbs {
			if err := mix(ctx, o, kind); err != nil {
				logf("%s: FAILED: %v", kind, err)
				os.Exit(1)
			}
		}
		return
	}
	var all []result
	failed := false
	for _, kind := range o.dbs {
		rs, err := benchmark(ctx, o, kind)
		all = append(all, rs...)
		if err != nil {
			failed = true
			logf("%s: FAILED: %v", kind, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	printMarkdown(o, all)
	if failed {
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	db := flag.String("db", "sqlite,postgres", "databases: sqlite, postgres, or both")
	flag.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "local PostgreSQL to create (and drop) the benchmark database on")
	flag.StringVar(&o.bin, "bin", "/tmp/admit", "admit server binary (go build -o /tmp/admit .)")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each run")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds of (Admit, handler) runs per query, interleaved")
	flag.IntVar(&o.invitations, "invitations", 10000, "invitations to import before measuring")
	flag.IntVar(&o.users, "users", 1000, "users to insert before measuring")
	flag.IntVar(&o.members, "members", 200, "members of the measured workspace")
	flag.BoolVar(&o.footprint, "footprint", false, "instead: measure VmRSS at ready, after a burst of -signins sign-ins by -clients clients, and each second for -settle")
	flag.IntVar(&o.signIns, "signins", 64, "sign-ins in the -footprint burst")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "how long -footprint watches VmRSS after the burst")
	bins := flag.String("mix", "", "instead: the saturation mix (invites, lists, me) against each of these comma-separated binaries in turn")
	q := flag.String("queries", "invitations,users,members", "queries to measure")
	flag.Parse()
	for _, d := range strings.Split(*db, ",") {
		if d = strings.TrimSpace(d); d != "sqlite" && d != "postgres" {
			return o, fmt.Errorf("-db %q: want sqlite and/or postgres", *db)
		}
		o.dbs = append(o.dbs, d)
	}
	if *bins != "" {
		o.bins = strings.Split(*bins, ",")
	}
	for _, s := range strings.Split(*q, ",") {
		if _, ok := queries[strings.TrimSpace(s)]; !ok {
			return o, fmt.Errorf("-queries: unknown %q", s)
		}
		o.queries = append(o.queries, strings.TrimSpace(s))
	}
	if o.clients < 1 || o.rounds < 1 || o.duration <= 0 || o.members < 100 || o.users < 100 || o.invitations < 100 {
		return o, errors.New("need -clients, -rounds ≥ 1, -duration > 0 and at least 100 invitations, users and members")
	}
	return o, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

// The measured GraphQL operations. The handler answers each with the same
// fields in the same shape.
var queries = map[string]string{
	"invitations": `query { invitations(first: 100) { edges { node { id email name status expiresAt createdAt role { id name } inviter { id name email } } } pageInfo { hasNextPage endCursor } } }`,
	"users":       `query { users(first: 100) { edges { node { id name email status kind role { id name } } } pageInfo { hasNextPage endCursor } } }`,
	"members":     `query($id: ID!) { workspace(id: $id) { id name members(first: 100) { edges { node { id role status user { id name email status kind role { id name } } } } pageInfo { hasNextPage endCursor } } } }`,
}

type result struct {
	db, query, side string
	round           int
	calls, errs     int
	elapsed         time.Duration
	p50, p99        time.Duration
	serverCPU       time.Duration
	pgCPU           time.Duration // -1 when not measured
	load            string
	firstErr        string
}

func (r result) perSecond() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func benchmark(ctx context.Context, o options, kind string) ([]result, error) {
	dir, err := os.MkdirTemp("", "readbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, err := newDatabase(ctx, kind, o.pg, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := d.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}()
	logf("%s: starting admit", kind)
	srv, err := startServer(ctx, o.bin, nil, d.ServerURL, dir, o.invitations+10)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if err := d.Open(); err != nil {
		return nil, err
	}
	logf("%s: importing %d invitations, inserting %d users and %d memberships", kind, o.invitations, o.users, o.members)
	wsID, err := seed(ctx, o, d, srv)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if _, _, err := d.DrainOutbox(ctx, 5*time.Minute); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	base, err := startServer(ctx, self, []string{
		envBaselineDriver + "=" + d.Driver, envBaselineDSN + "=" + d.DSN,
	}, "", dir, 0)
	if err != nil {
		return nil, fmt.Errorf("handler: %w", err)
	}
	defer base.stop()
	base.token = srv.token

	vars := map[string]map[string]any{"members": {"id": strconv.Itoa(wsID)}}
	// Both sides must return the same rows.
	for _, q := range o.queries {
		a, err := srv.post(ctx, queries[q], vars[q])
		if err != nil {
			return nil, fmt.Errorf("admit %s: %w", q, err)
		}
		b, err := base.post(ctx, queries[q], vars[q])
		if err != nil {
			return nil, fmt.Errorf("handler %s: %w", q, err)
		}
		if err := sameRows(a, b); err != nil {
			return nil, fmt.Errorf("%s: admit and the handler differ: %w", q, err)
		}
	}
	var out []result
	for _, q := range o.queries {
		for round := 1; round <= o.rounds; round++ {
			for _, side := range []struct {
				name string
				s    *server
			}{{"admit", srv}, {"handler", base}} {
				r, err := run(ctx, o, d, side.s, queries[q], vars[q])
				r.db, r.query, r.side, r.round = kind, q, side.name, round
				out = append(out, r)
				if err != nil {
					return out, err
				}
				logf("%s %s %s round %d: %.0f req/s, p99 %v, server CPU %v/req", kind, q, side.name, round, r.perSecond(), r.p99.Round(100*time.Microsecond), perReq(r.serverCPU, r.calls))
			}
		}
	}
	return out, nil
}

// sameRows compares two responses after normalizing what may differ:
// cursors (entgql's and the handler's encodings differ) and key order.
func sameRows(a, b []byte) error {
	norm := func(p []byte) (string, error) {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			return "", err
		}
		var walk func(any)
		walk = func(x any) {
			switch t := x.(type) {
			case map[string]any:
				delete(t, "endCursor")
				for _, c := range t {
					walk(c)
				}
			case []any:
				for _, c := range t {
					walk(c)
				}
			}
		}
		walk(v)
		out, err := json.Marshal(v)
		return string(out), err
	}
	na, err := norm(a)
	if err != nil {
		return err
	}
	nb, err := norm(b)
	if err != nil {
		return err
	}
	if strings.Count(na, `"node"`) < 100 {
		return fmt.Errorf("fewer than 100 rows: %.300s", na)
	}
	if na != nb {
		return fmt.Errorf("\nadmit:   %.600s\nhandler: %.600s", na, nb)
	}
	return nil
}

// run drives s with o.clients clients for o.warmup + o.duration and counts
// the calls that start and end inside the measured window.
func run(ctx context.Context, o options, d *database, s *server, query string, vars map[string]any) (result, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	var mu sync.Mutex
	var lat []time.Duration
	var r result
	start := time.Now()
	from, to := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	var snap cpuSnap
	var snapOnce sync.Once
	var wg sync.WaitGroup
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			errs := 0
			first := ""
			for {
				t0 := time.Now()
				if t0.After(to) || ctx.Err() != nil {
					break
				}
				if !t0.Before(from) {
					snapOnce.Do(func() { snap = takeCPU(ctx, s, d) })
				}
				_, err := s.postRaw(ctx, body)
				t1 := time.Now()
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				if !t0.Before(from) && !t1.After(to) {
					mine = append(mine, t1.Sub(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			r.errs += errs
			if r.firstErr == "" {
				r.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	use := cpuSince(ctx, snap, s, d)
	r.serverCPU, r.pgCPU = use.Server, use.PG
	r.elapsed = o.duration
	r.calls = len(lat)
	r.load = loadavg()
	if len(lat) == 0 {
		return r, fmt.Errorf("no calls completed (%d errors, first: %s)", r.errs, r.firstErr)
	}
	slices.Sort(lat)
	r.p50 = lat[len(lat)/2]
	r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	if r.errs > 0 {
		return r, fmt.Errorf("%d failed calls, first: %s", r.errs, r.firstErr)
	}
	return r, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return f[0]
}

func perReq(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return (d / time.Duration(n)).Round(10 * time.Microsecond)
}

func printMarkdown(o options, rs []result) {
	host, _ := os.Hostname()
	fmt.Printf("readbench: %d clients, %v per run after %v warm-up, %d invitations, %d users, %d members; host %s\n\n",
		o.clients, o.duration, o.warmup, o.invitations, o.users, o.members, host)
	fmt.Println("| database | query | round | server | req/s | p50 | p99 | server CPU/req | PostgreSQL CPU/req | Admit/handler req/s | load |")
	fmt.Println("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for i, r := range rs {
		ratio := ""
		if r.side == "handler" && i > 0 && rs[i-1].side == "admit" && r.calls > 0 {
			ratio = fmt.Sprintf("**%.0f%%**", 100*rs[i-1].perSecond()/r.perSecond())
		}
		pg := "—"
		if r.pgCPU >= 0 && r.db == "postgres" {
			pg = perReq(r.pgCPU, r.calls).String()
		}
		fmt.Printf("| %s | %s | %d | %s | %.0f | %v | %v | %v | %s | %s | %s |\n", r.db, r.query, r.round, r.side, r.perSecond(),
			r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), perReq(r.serverCPU, r.calls), pg, ratio, r.load)
	}
}

// post sends one GraphQL request and returns the data member.
func (s *server) post(ctx context.Context, query string, vars map[string]any) ([]byte, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	b, err := s.postRaw(ctx, body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return r.Data, nil
}

var errMarker = []byte(`"errors":[{"message"`) // GraphQL errors, not a payload's errors field

// postRaw sends one request body; a non-200 answer or a GraphQL error is an
// error.
func (s *server) postRaw(ctx context.Context, body []byte) ([]byte, error) {
	b, status, err := s.do(ctx, body)
	if err != nil {
		return nil, err
	}
	if status != 200 || bytes.Contains(b, errMarker) {
		return nil, fmt.Errorf("HTTP %d: %.300s", status, b)
	}
	return b, nil
}

func (s *server) do(ctx context.Context, body []byte) ([]byte, int, error) {
	req, err := newRequest(ctx, s.Base+"/query", body, s.token)
	if err != nil {
		return nil, 0, err
	}
	rsp, err := s.Client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	return b, rsp.StatusCode, err
}
