//go:build linux

// Command wsbench measures workspace subscriptions on real admit processes:
//
//   - fan-out: N websocket subscribers (graphql-transport-ws) follow one
//     workspace's joinRequestEvents; the time from each approveJoinRequest's
//     HTTP response to each subscriber's receipt of the APPROVED event, p50
//     and p99, on one process and with the subscribers on a second replica
//     (PostgreSQL);
//
//   - idle: M idle subscribers on one process: the server's RSS growth per
//     subscriber and the time from the first dial to all subscribed.
//
//     go build -o /tmp/admit . && go run ./bench/wsbench -bin /tmp/admit -db sqlite,postgres
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	_ "github.com/lib/pq"
)

const (
	secret   = "wsbench-fixed-secret-key-0123456789abcdef"
	admin    = "admin@bench.example.com"
	password = "bench-password-123456"
)

func main() {
	bin := flag.String("bin", "", "the admit binary (go build -o /tmp/admit .)")
	dbs := flag.String("db", "sqlite,postgres", "databases: sqlite, postgres")
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL to create a scratch schema in")
	subs := flag.Int("subscribers", 1000, "fan-out subscribers")
	rounds := flag.Int("approvals", 20, "approvals timed per fan-out run")
	idle := flag.Int("idle", 10000, "idle subscribers")
	flag.BoolVar(&distinctOps, "distinct-ops", false, "fan-out: give each subscriber's query a comment of its own, so no two share an execution (the server shares one per identical operation and viewer)")
	flag.Parse()
	if *bin == "" {
		fail("-bin is required")
	}
	raiseFileLimit()
	for _, kind := range strings.Split(*dbs, ",") {
		dbURL, cleanup := database(kind, *pgURL)
		fmt.Printf("\n## %s\n\n", kind)
		a := start(*bin, dbURL)
		fmt.Printf("fan-out, one process, %d subscribers, %d approvals: %s\n", *subs, *rounds, fanout(a, a, *subs, *rounds))
		if kind == "postgres" {
			b := start(*bin, dbURL)
			fmt.Printf("fan-out, subscribers on replica B, approvals on A, %d subscribers, %d approvals: %s\n", *subs, *rounds, fanout(a, b, *subs, *rounds))
			b.stop()
		}
		a.stop()
		c := start(*bin, dbURL)
		fmt.Printf("idle, %d subscribers on one process: %s\n", *idle, idleRun(c, *idle))
		c.stop()
		cleanup()
	}
}

func fail(f string, args ...any) {
	fmt.Fprintf(os.Stderr, "wsbench: "+f+"\n", args...)
	os.Exit(1)
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// database returns a fresh database URL of kind and a cleanup function.
func database(kind, pgURL string) (string, func()) {
	switch kind {
	case "sqlite":
		dir, _ := os.MkdirTemp("", "wsbench")
		return dir + "/admit.db", func() { os.RemoveAll(dir) }
	case "postgres":
		db, err := sql.Open("postgres", pgURL)
		if err != nil {
			fail("postgres: %v", err)
		}
		name := fmt.Sprintf("wsbench_%d", time.Now().UnixNano())
		if _, err := db.Exec("CREATE SCHEMA " + name); err != nil {
			fail("postgres: %v", err)
		}
		u, _ := url.Parse(pgURL)
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String(), func() { _, _ = db.Exec("DROP SCHEMA " + name + " CASCADE"); db.Close() }
	}
	fail("unknown database %q", kind)
	return "", nil
}

// proc is one admit child process.
type proc struct {
	cmd     *exec.Cmd
	base    string
	metrics string // the METRICS_ADDR listener
	token   string
	mu      sync.Mutex
	log     bytes.Buffer
}

func start(bin, dbURL string) *proc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("port: %v", err)
	}
	maddr := mln.Addr().String()
	mln.Close()
	p := &proc{base: "http://" + addr, metrics: "http://" + maddr + "/metrics"}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), "ADDR="+addr, "DATABASE_URL="+dbURL, "ADMIT_SECRET_KEY="+secret,
		"PUBLIC_URL=http://"+addr, "ADMIT_BOOTSTRAP_ORGANIZATION=Bench", "ADMIT_BOOTSTRAP_ADMIN_EMAIL="+admin,
		"ADMIT_BOOTSTRAP_ADMIN_PASSWORD="+password, "JOIN_LIMIT_PER_LINK=1000000", "JOIN_LIMIT_PER_ADDRESS=1000000",
		"METRICS_ADDR="+maddr, "WS_MAX_SOCKETS_PER_USER=1000000")
	out, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		fail("start: %v", err)
	}
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			p.mu.Lock()
			p.log.WriteString(line)
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(p.base + "/readyz"); err == nil && res.StatusCode == 200 {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			fail("server did not start:\n%s", p.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.token = str(p.post("", `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }`, map[string]any{"e": admin, "p": password}), "signIn", "token")
	return p
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

var client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}

func (p *proc) post(token, query string, vars map[string]any) map[string]any {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, p.base+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		fail("post: %v", err)
	}
	defer res.Body.Close()
	var out struct {
		Data   map[string]any
		Errors []any
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
		fail("post %s: %v %v", query, err, out.Errors)
	}
	return out.Data
}

func str(v any, path ...string) string {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// subscriber is one websocket subscription; got receives the arrival time
// of each event.
type subscriber struct {
	c   *websocket.Conn
	got chan time.Time
}

func subscribe(ctx context.Context, base, token, query string, vars map[string]any, got chan time.Time) (*subscriber, error) {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/query", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	w := func(v any) error { b, _ := json.Marshal(v); return c.Write(ctx, websocket.MessageText, b) }
	if err := w(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + token}}); err != nil {
		return nil, err
	}
	if _, b, err := c.Read(ctx); err != nil || !bytes.Contains(b, []byte("connection_ack")) {
		return nil, fmt.Errorf("init: %s %v", b, err)
	}
	if err := w(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}}); err != nil {
		return nil, err
	}
	s := &subscriber{c: c, got: got}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			switch {
			case bytes.Contains(b, []byte(`"type":"next"`)):
				if s.got != nil {
					s.got <- time.Now()
				}
			case bytes.Contains(b, []byte(`"type":"ping"`)):
				_ = c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`))
			}
		}
	}()
	return s, nil
}

var requestToken = regexp.MustCompile(`token=(adj_[0-9]+_1_[A-Za-z0-9_-]{43})`)

// pendingRequests makes n confirmed join requests through the link and
// returns their IDs; the confirmation links are read from the servers' logs
// (no SMTP server: the log sender prints them).
func pendingRequests(a, b *proc, linkToken string, n int, tag string) []string {
	seen := map[string]bool{}
	for _, m := range requestToken.FindAllStringSubmatch(a.logText()+b.logText(), -1) {
		seen[m[1]] = true
	}
	for i := range n {
		a.post("", `mutation($t: String!, $e: String!) { requestToJoinWorkspace(input: {token: $t, email: $e}) { message } }`,
			map[string]any{"t": linkToken, "e": fmt.Sprintf("%s-%d@example.com", tag, i)})
	}
	var tokens []string
	deadline := time.Now().Add(60 * time.Second)
	for len(tokens) < n && time.Now().Before(deadline) {
		for _, m := range requestToken.FindAllStringSubmatch(a.logText()+b.logText(), -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				tokens = append(tokens, m[1])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(tokens) < n {
		fail("only %d of %d confirmation links were sent", len(tokens), n)
	}
	for _, tok := range tokens {
		a.post("", `mutation($t: String!) { confirmJoinRequest(input: {token: $t}) { request { status } } }`, map[string]any{"t": tok})
	}
	d := a.post(a.token, `query { joinRequests(first: 100, where: {status: PENDING}) { edges { node { id } } } }`, nil)
	var ids []string
	for _, e := range d["joinRequests"].(map[string]any)["edges"].([]any) {
		ids = append(ids, str(e, "node", "id"))
	}
	return ids
}

var (
	runs        atomic.Int64
	distinctOps bool
)

// fanout: subscribers on sub follow one workspace; approvals go to act.
func fanout(act, sub *proc, n, rounds int) string {
	ws := str(act.post(act.token, `mutation($n: String!) { createWorkspace(input: {name: $n, type: FLOW}) { workspace { id } } }`,
		map[string]any{"n": fmt.Sprint("Fan-out ", runs.Add(1))}), "createWorkspace", "workspace", "id")
	link := str(act.post(act.token, `mutation($w: ID!) { updateWorkspaceLink(input: {workspaceID: $w, enabled: true}) { link { url } } }`, map[string]any{"w": ws}),
		"updateWorkspaceLink", "link", "url")
	u, _ := url.Parse(link)
	ids := pendingRequests(act, sub, u.Query().Get("token"), rounds, "fan"+ws)
	got := make(chan time.Time, n*4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var conns []*subscriber
	for i := range n {
		q := `subscription($w: ID) { joinRequestEvents(workspaceID: $w) { type cursor joinRequest { id status decidedAs } } }`
		if distinctOps {
			q += fmt.Sprintf(" # subscriber %d", i)
		}
		s, err := subscribe(ctx, sub.base, sub.token, q, map[string]any{"w": ws}, got)
		if err != nil {
			fail("subscribe: %v", err)
		}
		conns = append(conns, s)
	}
	defer func() {
		for _, c := range conns {
			c.c.CloseNow()
		}
	}()
	time.Sleep(time.Second) // every subscription registered
	var lat []time.Duration
	for _, id := range ids {
		act.post(act.token, `mutation($id: ID!) { approveJoinRequest(input: {id: $id, as: CLIENT}) { joinRequest { status } } }`, map[string]any{"id": id})
		t0 := time.Now()
		for range n {
			select {
			case at := <-got:
				lat = append(lat, at.Sub(t0))
			case <-time.After(30 * time.Second):
				fail("a subscriber missed an event")
			}
		}
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (%d receipts)", q(0.50).Round(100*time.Microsecond), q(0.99).Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond), len(lat))
}

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// memstat reads one Go memory gauge of the server from its metrics.
func (p *proc) memstat(name string) float64 {
	res, err := client.Get(p.metrics)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			return v
		}
	}
	return 0
}

func idleRun(p *proc, n int) string {
	ws := str(p.post(p.token, `mutation { createWorkspace(input: {name: "Idle", type: GROUP}) { workspace { id } } }`, nil), "createWorkspace", "workspace", "id")
	// Warm up: one subscriber, so the first one's one-time costs (code
	// paths, pools) are not counted per subscriber.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	warm, err := subscribe(ctx, p.base, p.token, `subscription($w: ID) { membershipEvents(workspaceID: $w) { type } }`, map[string]any{"w": ws}, nil)
	if err != nil {
		fail("subscribe: %v", err)
	}
	time.Sleep(2 * time.Second)
	before := rss(p.cmd.Process.Pid)
	heap0, stack0 := p.memstat("go_memstats_heap_inuse_bytes"), p.memstat("go_memstats_stack_inuse_bytes")
	goroutines0 := p.memstat("go_goroutines")
	t0 := time.Now()
	conns := make([]*subscriber, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := subscribe(ctx, p.base, p.token, `subscription($w: ID) { membershipEvents(workspaceID: $w) { type } }`, map[string]any{"w": ws}, nil)
			if err != nil {
				fail("subscribe %d: %v", i, err)
			}
			conns[i] = s
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	time.Sleep(3 * time.Second) // let the server settle
	after := rss(p.cmd.Process.Pid)
	heap1, stack1 := p.memstat("go_memstats_heap_inuse_bytes"), p.memstat("go_memstats_stack_inuse_bytes")
	goroutines1 := p.memstat("go_goroutines")
	for _, c := range append(conns, warm) {
		c.c.CloseNow()
	}
	per := float64(after-before) / float64(n)
	return fmt.Sprintf("all subscribed in %v; RSS %.1f → %.1f MiB, %.1f KiB per subscriber (heap in use %.1f KiB, goroutine stacks %.1f KiB, %.1f goroutines each)",
		elapsed.Round(10*time.Millisecond), float64(before)/(1<<20), float64(after)/(1<<20), per/1024,
		(heap1-heap0)/float64(n)/1024, (stack1-stack0)/float64(n)/1024, (goroutines1-goroutines0)/float64(n))
}
