//go:build linux

// Command outboxbench measures whether the outbox keeps sending while
// requests saturate the server (issue 9, item 9): it queues a few thousand
// invitation messages with one import, then runs many concurrent clients
// (me, invitations(first: 100), inviteUsers of one address, in turn) for a
// fixed time, and counts how many of the queued messages reach a local SMTP
// relay (in this process) during the load. Each -bin is a real admit
// binary on a fresh PostgreSQL (or SQLite) database; runs alternate between
// them so that the machine's load hits both alike.
//
//	go build -o /tmp/admit-after . && go run ./bench/outboxbench -bin after=/tmp/admit-after,before=/tmp/admit-before
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/lib/pq"
)

const (
	secret   = "outboxbench-fixed-secret-key-0123456789abcdef"
	admin    = "admin@bench.example.com"
	password = "bench-password-123456"
)

type binary struct{ name, path string }

func main() {
	bins := flag.String("bin", "", "binaries to compare, name=path,name=path (go build -o … .)")
	kind := flag.String("db", "postgres", "database: postgres or sqlite")
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "local PostgreSQL to create (and drop) a database on per run")
	queued := flag.Int("queued", 5000, "invitation messages queued (one import) before the load starts")
	clients := flag.Int("clients", 200, "concurrent clients")
	duration := flag.Duration("duration", 60*time.Second, "how long the clients send requests")
	runs := flag.Int("runs", 1, "rounds; each runs every binary once, in turn")
	concurrency := flag.Int("outbox-concurrency", 4, "OUTBOX_CONCURRENCY of the servers")
	flag.Parse()
	var list []binary
	for _, f := range strings.Split(*bins, ",") {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			fail("-bin wants name=path[,name=path…], got %q", *bins)
		}
		list = append(list, binary{name, path})
	}
	relay, err := startRelay()
	if err != nil {
		fail("relay: %v", err)
	}
	fmt.Printf("# outboxbench: %s, %d queued, %d clients for %v, OUTBOX_CONCURRENCY=%d, %s\n", *kind, *queued, *clients, *duration, *concurrency, loadavg())
	fmt.Println("| run | binary | queued | sent before the load | sent during the load | per second | requests served | req/s | p99 | errors | load average after |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	ctx := context.Background()
	for run := 1; run <= *runs; run++ {
		for _, b := range list {
			r, err := measure(ctx, b, *kind, *pgURL, relay, *queued, *clients, *duration, *concurrency)
			if err != nil {
				fail("%s: %v", b.name, err)
			}
			fmt.Printf("| %d | %s | %d | %d | **%d** | %.0f | %d | %.0f | %.0f ms | %d | %s |\n", run, b.name, r.queued, r.before, r.during,
				float64(r.during)/duration.Seconds(), r.served, float64(r.served)/duration.Seconds(), r.p99.Seconds()*1000, r.errors, loadavg())
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "outboxbench: "+format+"\n", args...)
	os.Exit(1)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// relay is an SMTP server that accepts every message at once and counts
// the ones to the queued addresses.
type relay struct {
	addr   string
	queued atomic.Int64 // messages to q-… addresses
	other  atomic.Int64
}

func startRelay() (*relay, error) {
	r := &relay{}
	srv := smtp.NewServer(r)
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.MaxRecipients = 1
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	return r, nil
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }

type relaySession struct {
	r  *relay
	to string
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if strings.HasPrefix(s.to, "q-") {
		s.r.queued.Add(1)
	} else {
		s.r.other.Add(1)
	}
	return nil
}
func (s *relaySession) Reset()        { s.to = "" }
func (s *relaySession) Logout() error { return nil }

type result struct {
	queued, before, during, served, errors int
	p99                                    time.Duration
}

func measure(ctx context.Context, b binary, kind, pgURL string, r *relay, queued, clients int, dur time.Duration, concurrency int) (result, error) {
	var res result
	dbURL, drop, err := newDatabase(ctx, kind, pgURL)
	if err != nil {
		return res, err
	}
	defer drop()
	srv, err := startServer(ctx, b.path, dbURL, r.addr, concurrency)
	if err != nil {
		return res, err
	}
	defer srv.stop()

	base := r.queued.Load()
	var csv bytes.Buffer
	csv.WriteString("email\n")
	tag := randomHex(4)
	for i := range queued {
		fmt.Fprintf(&csv, "q-%s-%d@example.com\n", tag, i)
	}
	n, err := srv.importFile(ctx, csv.Bytes())
	if err != nil {
		return res, err
	}
	res.queued = n
	// The load starts now; what the outbox sent while the import's
	// response travelled is counted apart.
	res.before = int(r.queued.Load() - base)
	lctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; lctx.Err() == nil; i++ {
				start := time.Now()
				var err error
				switch (c + i) % 3 {
				case 0:
					err = srv.gql(lctx, `{ me { email } }`, nil)
				case 1:
					err = srv.gql(lctx, `{ invitations(first: 100) { edges { node { id email status role { name } inviter { name } } } } }`, nil)
				default:
					err = srv.gql(lctx, `mutation($e: [String!]!) { inviteUsers(input: {emails: $e}) { errors { code } } }`,
						map[string]any{"e": []string{fmt.Sprintf("load-%s-%d-%d@example.com", tag, c, i)}})
				}
				if lctx.Err() != nil {
					break // cut off by the end of the load, not counted
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	<-lctx.Done()
	res.during = int(r.queued.Load()-base) - res.before
	wg.Wait()
	res.served, res.errors = len(lat), int(errs.Load())
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p99 = lat[len(lat)*99/100]
	}
	return res, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newDatabase makes a fresh database: a new one on the local PostgreSQL
// server, or a SQLite file.
func newDatabase(ctx context.Context, kind, pgURL string) (string, func(), error) {
	if kind == "sqlite" {
		dir, err := os.MkdirTemp("", "outboxbench-")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "admit.db"), func() { _ = os.RemoveAll(dir) }, nil
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", nil, err
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return "", nil, fmt.Errorf("-pg must be a local server, got host %q", h)
	}
	adm, err := sql.Open("postgres", pgURL)
	if err != nil {
		return "", nil, err
	}
	name := "admit_outboxbench_" + randomHex(6)
	if _, err := adm.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		adm.Close()
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	du := *u
	du.Path = "/" + name
	return du.String(), func() {
		_, _ = adm.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)")
		adm.Close()
	}, nil
}

// server is one child process of the admit binary.
type server struct {
	cmd    *exec.Cmd
	base   string
	done   chan struct{}
	token  string
	client *http.Client
	log    *os.File
}

func startServer(ctx context.Context, bin, dbURL, relayAddr string, concurrency int) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logFile, err := os.CreateTemp("", "outboxbench-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	// Nothing from the caller's shell reaches the server.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"ADDR=" + addr, "PUBLIC_URL=http://" + addr, "DATABASE_URL=" + dbURL,
		"ADMIT_SECRET_KEY=" + secret, "LOG_LEVEL=error",
		"ADMIT_BOOTSTRAP_ORGANIZATION=Bench", "ADMIT_BOOTSTRAP_ADMIN_EMAIL=" + admin, "ADMIT_BOOTSTRAP_ADMIN_PASSWORD=" + password,
		"SMTP_URL=smtp://" + relayAddr, "SMTP_FROM=Bench <no-reply@bench.example.com>",
		"OUTBOX_CONCURRENCY=" + strconv.Itoa(concurrency),
		"IMPORT_MAX_ROWS=100000",
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr, done: make(chan struct{}), log: logFile,
		client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256, MaxIdleConns: 256}}}
	go func() { _ = cmd.Wait(); close(s.done) }()
	for deadline := time.Now().Add(90 * time.Second); ; {
		rsp, err := s.client.Get(s.base + "/readyz")
		if err == nil {
			rsp.Body.Close()
			if rsp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("server exited; log %s", logFile.Name())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("server not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out struct {
		SignIn struct{ Token *string } `json:"signIn"`
	}
	if err := s.gqlInto(ctx, `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token } }`,
		map[string]any{"e": admin, "p": password}, &out); err != nil || out.SignIn.Token == nil {
		s.stop()
		return nil, fmt.Errorf("signIn: %v", err)
	}
	s.token = *out.SignIn.Token
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.client.CloseIdleConnections()
	s.log.Close()
	_ = os.Remove(s.log.Name())
}

func (s *server) gql(ctx context.Context, query string, vars map[string]any) error {
	return s.gqlInto(ctx, query, vars, nil)
}

func (s *server) gqlInto(ctx context.Context, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/query", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return s.do(req, out)
}

func (s *server) do(req *http.Request, out any) error {
	rsp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("HTTP %d: %.200q", rsp.StatusCode, b)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("HTTP %d: %s", rsp.StatusCode, r.Errors[0].Message)
	}
	if out != nil {
		return json.Unmarshal(r.Data, out)
	}
	return nil
}

// importFile queues one invitation per line of csv with importInvitations.
func (s *server) importFile(ctx context.Context, csv []byte) (int, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	ops, _ := json.Marshal(map[string]any{"query": `mutation($f: Upload!) { importInvitations(input: {file: $f}) { counts { invited } errors { code message } } }`, "variables": map[string]any{"f": nil}})
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0":["variables.f"]}`)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="0"; filename="list.csv"`)
	h.Set("Content-Type", "text/csv")
	part, _ := w.CreatePart(h)
	_, _ = part.Write(csv)
	_ = w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/query", &buf)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	req.Header.Set("Authorization", "Bearer "+s.token)
	var out struct {
		ImportInvitations struct {
			Counts struct{ Invited int }
			Errors []struct{ Code, Message string }
		} `json:"importInvitations"`
	}
	if err := s.do(req, &out); err != nil {
		return 0, fmt.Errorf("importInvitations: %w", err)
	}
	if len(out.ImportInvitations.Errors) > 0 {
		return 0, fmt.Errorf("importInvitations: %+v", out.ImportInvitations.Errors)
	}
	return out.ImportInvitations.Counts.Invited, nil
}
