//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"admit/bench/internal/benchkit"
)

// Targets of issue #13 item 2: Admit's single-address inviteUsers against
// the peer's invite endpoint, side by side.
const (
	targetPeerSequential = 3.0 // 1 client
	targetPeerConcurrent = 4.0 // 16 clients
)

// peer is one child process of bench/peers/<name>/server.mjs: better-auth
// with its organization plugin, on a database of its own.
type peer struct {
	*benchkit.Process
	cookie string // the owner's session cookie
	orgID  string
}

func (p *peer) pid() int { return p.PID() }

func (p *peer) stop() { p.Stop() }

// ensureNodeModules installs the peer's pinned dependencies (npm ci from
// package-lock.json) when node_modules is missing, so the benchmark is one
// command.
func ensureNodeModules(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
		return nil
	}
	logf("peer: %s/node_modules missing: running npm ci", dir)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return nil
}

// startPeer runs node server.mjs in dir on dbURL, waits for its "ready"
// line, then signs up the owner, signs in and creates the organization
// through the peer's documented endpoints.
func startPeer(ctx context.Context, node, dir, dbURL, workDir string) (*peer, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.CreateTemp(workDir, "peer-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"NODE_ENV=production",
		"PORT=" + strconv.Itoa(port),
		"DATABASE_URL=" + dbURL,
		"BETTER_AUTH_SECRET=" + benchSecret,
		"BETTER_AUTH_TELEMETRY=0",
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	proc, err := benchkit.Start(cmd, "http://127.0.0.1:"+strconv.Itoa(port), logFile)
	if err != nil {
		return nil, fmt.Errorf("%s server.mjs in %s: %w", node, dir, err)
	}
	p := &peer{Process: proc}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if !signalled && strings.HasPrefix(sc.Text(), "ready ") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
	case <-p.Done():
		return nil, fmt.Errorf("peer exited before it was ready (%v); log:\n%s", p.Exit(), p.LogTail())
	case <-time.After(90 * time.Second):
		p.stop()
		return nil, fmt.Errorf("peer not ready after 90 s; log:\n%s", p.LogTail())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	if err := p.setUp(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// post sends a JSON body with the session cookie and an Origin header
// (better-auth refuses cookie-bearing POSTs without a trusted Origin).
func (p *peer) post(ctx context.Context, path string, body any) (*http.Response, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Base+path, bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.Base)
	if p.cookie != "" {
		req.Header.Set("Cookie", p.cookie)
	}
	rsp, err := p.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer rsp.Body.Close()
	out, err := io.ReadAll(rsp.Body)
	if err != nil {
		return nil, nil, err
	}
	if rsp.StatusCode != http.StatusOK {
		return rsp, out, fmt.Errorf("POST %s: HTTP %d: %.300s", path, rsp.StatusCode, out)
	}
	return rsp, out, nil
}

func (p *peer) setUp(ctx context.Context) error {
	cred := map[string]any{"email": benchAdmin, "password": benchPassword}
	if _, _, err := p.post(ctx, "/api/auth/sign-up/email", map[string]any{"email": benchAdmin, "password": benchPassword, "name": "Bench Admin"}); err != nil {
		return fmt.Errorf("peer sign-up: %w", err)
	}
	rsp, _, err := p.post(ctx, "/api/auth/sign-in/email", cred)
	if err != nil {
		return fmt.Errorf("peer sign-in: %w", err)
	}
	for _, c := range rsp.Cookies() {
		if strings.HasSuffix(c.Name, "session_token") {
			p.cookie = c.Name + "=" + c.Value
		}
	}
	if p.cookie == "" {
		return fmt.Errorf("peer sign-in set no session cookie (%v)", rsp.Header.Values("Set-Cookie"))
	}
	_, b, err := p.post(ctx, "/api/auth/organization/create", map[string]any{"name": benchOrg, "slug": "bench"})
	if err != nil {
		return fmt.Errorf("peer organization: %w", err)
	}
	var org struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &org); err != nil || org.ID == "" {
		return fmt.Errorf("peer organization: no id in %.300s", b)
	}
	p.orgID = org.ID
	return nil
}

// inviteOne is the plugin's documented invite call for one address.
func (p *peer) inviteOne(ctx context.Context, email string) (time.Duration, error) {
	body, err := json.Marshal(map[string]any{"email": email, "role": "member", "organizationId": p.orgID})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Base+"/api/auth/organization/invite-member", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.Base)
	req.Header.Set("Cookie", p.cookie)
	start := time.Now()
	rsp, err := p.Client.Do(req)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if rsp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("invite-member(%s): HTTP %d: %.300s", email, rsp.StatusCode, b)
	}
	var inv struct {
		Status string `json:"status"`
		Email  string `json:"email"`
	}
	if err := json.Unmarshal(b, &inv); err != nil || inv.Status != "pending" || inv.Email != email {
		return 0, fmt.Errorf("invite-member(%s): unexpected answer %.300s", email, b)
	}
	return elapsed, nil
}

// peerRow is one round of one client count: Admit, then the peer (or the
// other way round on even rounds).
type peerRow struct {
	round, clients int
	admit, peer    throughputResult
	load           string
}

func (r peerRow) ratio() float64 {
	if r.peer.perSecond() == 0 {
		return 0
	}
	return r.admit.perSecond() / r.peer.perSecond()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchPeer runs Admit and the peer at the same time on two fresh
// PostgreSQL databases and alternates their rounds: for each round and each
// client count, one measurement of each, Admit first on odd rounds and the
// peer first on even ones. Admit's outbox is drained before every
// measurement so that its background sends do not take CPU from the peer.
func benchPeer(ctx context.Context, o options) ([]peerRow, []string, error) {
	dir, err := os.MkdirTemp("", "invitebench-peer-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	peerDir, err := filepath.Abs(o.peer)
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(peerDir, "server.mjs")); err != nil {
		return nil, nil, fmt.Errorf("-peer %s: %w", o.peer, err)
	}
	if err := ensureNodeModules(ctx, peerDir); err != nil {
		return nil, nil, err
	}

	logf("peer: starting Admit on a fresh PostgreSQL database")
	e, err := newEnv(ctx, o, "postgres", dir)
	if err != nil {
		return nil, nil, err
	}
	defer e.close()
	pdb, err := newDatabase(ctx, "postgres", o.pg, dir)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err := pdb.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}()
	logf("peer: starting %s on a fresh PostgreSQL database", filepath.Join(o.peer, "server.mjs"))
	p, err := startPeer(ctx, o.node, peerDir, pdb.ServerURL, dir)
	if err != nil {
		return nil, nil, err
	}
	defer p.stop()
	if err := pdb.Open(); err != nil {
		return nil, nil, err
	}

	// Node compiles hot code as it runs: both sides get 3 s at 16 clients,
	// not measured, before the first round.
	logf("peer: warming both up (3 s at 16 clients each, not measured)")
	for _, t := range []struct {
		s  target
		db *database
	}{{e.srv, e.db}, {p, pdb}} {
		if w := runThroughput(ctx, t.s, t.db, 16, 0, 3*time.Second); w.errors > 0 {
			return nil, nil, fmt.Errorf("warm-up: %d failed calls; first: %s", w.errors, w.firstErr)
		}
	}

	var rows []peerRow
	for round := 1; round <= o.peerRounds; round++ {
		for _, n := range o.clients {
			row := peerRow{round: round, clients: n, load: loadavg()}
			measure := func(name string) error {
				if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
					return err
				}
				var t throughputResult
				if name == "admit" {
					t = runThroughput(ctx, e.srv, e.db, n, o.warmup, o.duration)
					row.admit = t
				} else {
					t = runThroughput(ctx, p, pdb, n, o.warmup, o.duration)
					row.peer = t
				}
				logf("peer: round %d, %d client(s), %s: %.0f calls/s, p50 %v, p99 %v, %d errors",
					round, n, name, t.perSecond(), t.p50.Round(100*time.Microsecond), t.p99.Round(100*time.Microsecond), t.errors)
				if t.errors > 0 {
					return fmt.Errorf("%s, %d clients: %d failed calls; first: %s", name, n, t.errors, t.firstErr)
				}
				return ctx.Err()
			}
			order := []string{"admit", "peer"}
			if round%2 == 0 {
				order = []string{"peer", "admit"}
			}
			for _, name := range order {
				if err := measure(name); err != nil {
					return rows, nil, err
				}
			}
			rows = append(rows, row)
		}
	}
	var warnings []string
	if w := e.srv.serverLogWarnings(); len(w) > 0 {
		warnings = append(warnings, fmt.Sprintf("Admit: %d WARN/ERROR lines in the server log; first: %.300s", len(w), w[0]))
	}
	return rows, warnings, nil
}

func printPeer(w io.Writer, o options, m machineInfo, rows []peerRow, warnings []string, runErr error) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("### invitebench -peer, %s", m.date)
	p("")
	p("- Command: `go build -o %s . && %s`", o.bin, command())
	p("- Machine: %d CPUs (%s), kernel %s; load average at start %s, at the end %s", m.cpus, m.cpuModel, m.kernel, m.loadavg, loadavg())
	p("- Admit: %s, revision %s; peer: `%s` (node %s)", m.binGo, orDash(m.binRevision), filepath.Join(o.peer, "server.mjs"), nodeVersion(o.node))
	p("- Each measurement: %v warm-up, then %v; single-address invites of fresh addresses; PostgreSQL, one database each; both servers warmed up for 3 s at 16 clients first", o.warmup, o.duration)
	p("")
	p("| round | clients | Admit calls/s | peer calls/s | **Admit / peer** | Admit p50 / p99 | peer p50 / p99 | server CPU per call Admit / peer | PostgreSQL CPU per call Admit / peer | load |")
	p("|---:|---:|---:|---:|---:|---|---|---|---|---|")
	perCall := func(d time.Duration, calls int) string {
		if calls == 0 || d < 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f ms", float64(d)/float64(calls)/float64(time.Millisecond))
	}
	for _, r := range rows {
		p("| %d | %d | %.0f | %.0f | **%.2f×** | %s / %s | %s / %s | %s / %s | %s / %s | %s |", r.round, r.clients,
			r.admit.perSecond(), r.peer.perSecond(), r.ratio(),
			ms(r.admit.p50), ms(r.admit.p99), ms(r.peer.p50), ms(r.peer.p99),
			perCall(r.admit.cpu.Server, r.admit.calls), perCall(r.peer.cpu.Server, r.peer.calls),
			perCall(r.admit.cpu.PG, r.admit.calls), perCall(r.peer.cpu.PG, r.peer.calls), r.load)
	}
	p("")
	for _, n := range o.clients {
		var ratios []float64
		for _, r := range rows {
			if r.clients == n {
				ratios = append(ratios, r.ratio())
			}
		}
		if len(ratios) == 0 {
			continue
		}
		lo, hi := ratios[0], ratios[0]
		for _, x := range ratios {
			lo, hi = min(lo, x), max(hi, x)
		}
		goal := ""
		switch n {
		case 1:
			goal = fmt.Sprintf("; target ≥ %.0f×: %s", targetPeerSequential, verdict(lo >= targetPeerSequential))
		case 16:
			goal = fmt.Sprintf("; target ≥ %.0f×: %s", targetPeerConcurrent, verdict(lo >= targetPeerConcurrent))
		}
		p("- %d client(s): Admit / peer %.2f–%.2f× over %d rounds%s", n, lo, hi, len(ratios), goal)
	}
	for _, w := range warnings {
		p("- Warning: %s", w)
	}
	if runErr != nil {
		p("- **Run failed:** %v", runErr)
	}
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}
