//go:build linux

// Command invitebench measures bulk invitations on the real admit server:
// importInvitations over HTTP against a raw database/sql baseline on the
// same table, the memory a 50,000-row import costs, and inviteUsers
// throughput with 1 and 16 concurrent clients.
//
//	go build -o /tmp/admit . && go run ./bench/invitebench -db sqlite
//	go run ./bench/invitebench -db postgres [-pg postgres://postgres@127.0.0.1:5432/test?sslmode=disable]
//	go run ./bench/invitebench -peer bench/peers/betterauth   # against better-auth's organization plugin (PostgreSQL)
//
// It starts the server binary (-bin) as a child process on 127.0.0.1 with a
// fresh database for each part (a temp SQLite file, or a new PostgreSQL
// database that is dropped at the end), and prints Markdown tables. See
// BENCHMARKS.md at the repository root.
package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"admit/bench/internal/benchkit"
)

type options struct {
	dbs          []string
	pg           string
	bin          string
	rows         int
	runs         int
	memRows      int
	duration     time.Duration
	warmup       time.Duration
	clients      []int
	analyze      bool
	drainTimeout time.Duration
	skip         map[string]bool
	peer         string // bench/peers/<name>: run only the peer comparison
	peerRounds   int
	node         string
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "invitebench:", err)
		os.Exit(2)
	}
	// Output piped into head must not kill the run before it stops the
	// server and drops its databases: a write to a closed pipe then fails.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if _, err := os.Stat(o.bin); err != nil {
		fmt.Fprintf(os.Stderr, "invitebench: no server binary at %s (%v).\nBuild it first, from the repository root:\n\n  go build -o %s .\n\n", o.bin, err, o.bin)
		os.Exit(2)
	}
	m := machine(o.bin)
	logf("machine: %s", m.oneLine())

	if o.peer != "" {
		rows, warnings, err := benchPeer(ctx, o)
		if err != nil {
			logf("peer: FAILED: %v", err)
		}
		printPeer(os.Stdout, o, m, rows, warnings, err)
		if err != nil {
			os.Exit(1)
		}
		return
	}

	var reports []*report
	failed := false
	for _, kind := range o.dbs {
		r, err := benchmark(ctx, o, kind)
		reports = append(reports, r)
		if err != nil {
			failed = true
			logf("%s: FAILED: %v", kind, err)
			r.errs = append(r.errs, err.Error())
		}
		if ctx.Err() != nil {
			break
		}
	}
	printMarkdown(os.Stdout, o, m, reports)
	if failed {
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	db := flag.String("db", "sqlite", "database(s) to benchmark: sqlite, postgres, or sqlite,postgres")
	flag.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL to create (and drop) the benchmark databases from; must be local")
	flag.StringVar(&o.bin, "bin", "/tmp/admit", "server binary (go build -o /tmp/admit .)")
	flag.IntVar(&o.rows, "rows", 10000, "rows per import and per raw-insert run")
	flag.IntVar(&o.runs, "runs", 3, "timed runs of each import / raw measurement")
	flag.IntVar(&o.memRows, "mem-rows", 50000, "rows of the import whose peak memory is measured")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each inviteUsers throughput test")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each throughput measurement")
	cl := flag.String("clients", "1,16", "concurrent inviteUsers clients, comma-separated")
	flag.BoolVar(&o.analyze, "analyze", true, "also time imports that stop early (invalid rows, already-invited rows, dry run) to see where time goes")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "longest wait for the server's outbox to send queued messages before a timed step")
	skip := flag.String("skip", "", "parts to skip, comma-separated: import, memory, throughput")
	flag.StringVar(&o.peer, "peer", "", "directory of a peer server (bench/peers/betterauth): compare single-address invites with it on PostgreSQL in alternating rounds, and nothing else")
	flag.IntVar(&o.peerRounds, "peer-rounds", 3, "alternating Admit/peer rounds with -peer")
	flag.StringVar(&o.node, "node", "node", "Node.js binary for -peer")
	flag.Parse()
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	for _, d := range strings.Split(*db, ",") {
		d = strings.TrimSpace(d)
		if d != "sqlite" && d != "postgres" {
			return o, fmt.Errorf("-db %q: want sqlite, postgres or sqlite,postgres", *db)
		}
		o.dbs = append(o.dbs, d)
	}
	for _, c := range strings.Split(*cl, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 256 {
			return o, fmt.Errorf("-clients %q: want numbers from 1 to 256", *cl)
		}
		o.clients = append(o.clients, n)
	}
	o.skip = map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if s != "import" && s != "memory" && s != "throughput" {
				return o, fmt.Errorf("-skip %q: want import, memory or throughput", s)
			}
			o.skip[s] = true
		}
	}
	switch {
	case o.rows < 1 || o.rows > 1_000_000:
		return o, errors.New("-rows must be 1 to 1,000,000")
	case o.runs < 1 || o.runs > 50:
		return o, errors.New("-runs must be 1 to 50")
	case o.memRows < 1 || o.memRows > 1_000_000:
		return o, errors.New("-mem-rows must be 1 to 1,000,000")
	case o.peerRounds < 1 || o.peerRounds > 50:
		return o, errors.New("-peer-rounds must be 1 to 50")
	case o.duration <= 0 || o.duration > 10*time.Minute || o.warmup < 0 || o.warmup > time.Minute:
		return o, errors.New("-duration must be in (0, 10m], -warmup in [0, 1m]")
	}
	return o, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

// ---- results ----

type series []time.Duration

func (s series) sorted() series {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
func (s series) min() time.Duration { return s.sorted()[0] }
func (s series) median() time.Duration {
	c := s.sorted()
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

type throughputResult struct {
	clients  int
	calls    int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	max      time.Duration
	firstErr string
	drain    time.Duration // outbox catch-up after the test
	drained  int
	cpu      cpuUse // over the measured window
}

func cpus() int { return runtime.NumCPU() }

func (t throughputResult) perSecond() float64 { return float64(t.calls) / t.elapsed.Seconds() }

type pgDelta struct {
	tables map[string][4]int64
	commit int64
	rollbk int64
}

type report struct {
	kind string

	importT, rawT series
	tableBefore   []int           // rows in invitations before each import run
	cpu           []cpuRow        // where each timed step's time went
	drains        []time.Duration // outbox drain after each import
	analysis      []analysisRow
	pg            *pgDelta

	memIdleRSS, memHWMBefore, memPeakHWM, memAfterRSS int64
	memImport                                         time.Duration
	memDone                                           bool

	tput []throughputResult

	warnings []string
	errs     []string
}

type cpuRow struct {
	step string
	use  cpuUse
}

type analysisRow struct {
	name string
	note string
	t    series
}

// ---- the benchmark ----

func emails(prefix string, n int) []string {
	tag := benchkit.RandomHex(3)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%s-%06d@%s", prefix, tag, i, benchDomain)
	}
	return out
}

func csvOf(lines []string) []byte {
	var b strings.Builder
	b.Grow(len(lines) * 40)
	b.WriteString("email\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// env is one fresh database with one server on it.
type env struct {
	db  *database
	srv *server
}

func (e *env) close() {
	if e.srv != nil {
		e.srv.stop()
	}
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}
}

func newEnv(ctx context.Context, o options, kind, dir string) (*env, error) {
	e := &env{}
	var err error
	if e.db, err = newDatabase(ctx, kind, o.pg, dir); err != nil {
		return nil, err
	}
	maxRows := max(o.rows, o.memRows) + 10
	upload := int64(maxRows)*64 + 1<<20
	if e.srv, err = startServer(ctx, o.bin, e.db.ServerURL, dir, maxRows, upload); err != nil {
		e.close()
		return nil, err
	}
	if err := e.db.Open(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func benchmark(ctx context.Context, o options, kind string) (*report, error) {
	r := &report{kind: kind}
	dir, err := os.MkdirTemp("", "invitebench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)

	if !o.skip["import"] {
		if err := benchImport(ctx, o, kind, dir, r); err != nil {
			return r, fmt.Errorf("import: %w", err)
		}
	}
	if !o.skip["memory"] {
		if err := benchMemory(ctx, o, kind, dir, r); err != nil {
			return r, fmt.Errorf("memory: %w", err)
		}
	}
	if !o.skip["throughput"] {
		if err := benchThroughput(ctx, o, kind, dir, r); err != nil {
			return r, fmt.Errorf("throughput: %w", err)
		}
	}
	return r, nil
}

func (r *report) collectWarnings(part string, s *server) {
	w := s.serverLogWarnings()
	if len(w) == 0 {
		return
	}
	first := w[0]
	if len(first) > 300 {
		first = first[:300] + "…"
	}
	r.warnings = append(r.warnings, fmt.Sprintf("%s: %d WARN/ERROR lines in the server log; first: %s", part, len(w), first))
}

// benchImport times importInvitations against raw inserts, interleaved
// (import 1, raw 1, import 2, raw 2, …) on one server and database, with the
// outbox drained before each timed step.
func benchImport(ctx context.Context, o options, kind, dir string, r *report) error {
	logf("%s: import vs raw: starting a server on a fresh database", kind)
	e, err := newEnv(ctx, o, kind, dir)
	if err != nil {
		return err
	}
	defer e.close()
	id, err := e.db.lookupIDs(ctx)
	if err != nil {
		return err
	}
	var firstFile []byte
	for run := 1; run <= o.runs; run++ {
		if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
			return err
		}
		before, err := e.db.countLike(ctx, "%")
		if err != nil {
			return err
		}
		r.tableBefore = append(r.tableBefore, before)
		list := emails(fmt.Sprintf("imp%d", run), o.rows)
		file := csvOf(list)
		if run == 1 {
			firstFile = file
		}
		snap := takeCPU(ctx, e.srv, e.db)
		c, d, err := e.srv.importFile(ctx, file, false)
		if err != nil {
			return err
		}
		r.cpu = append(r.cpu, cpuRow{fmt.Sprintf("import run %d", run), cpuSince(ctx, snap, e.srv, e.db)})
		if c.Invited != o.rows || c.Total != o.rows {
			return fmt.Errorf("import run %d: invited %d of %d (%+v)", run, c.Invited, o.rows, c)
		}
		if n, err := e.db.countLike(ctx, fmt.Sprintf("imp%d-%%", run)); err != nil || n != o.rows {
			return fmt.Errorf("import run %d: %d rows in invitations (%v)", run, n, err)
		}
		r.importT = append(r.importT, d)
		snap = takeCPU(ctx, e.srv, e.db)
		drain, queued, err := e.db.DrainOutbox(ctx, o.drainTimeout)
		if err != nil {
			return err
		}
		r.cpu = append(r.cpu, cpuRow{fmt.Sprintf("outbox drain after import run %d (%d messages)", run, queued), cpuSince(ctx, snap, e.srv, e.db)})
		r.drains = append(r.drains, drain)
		logf("%s: import run %d: %d rows in %v (outbox then sent %d messages in %v)", kind, run, o.rows, d.Round(time.Millisecond), queued, drain.Round(time.Millisecond))

		rows := makeRawRows(emails(fmt.Sprintf("raw%d", run), o.rows))
		snap = takeCPU(ctx, e.srv, e.db)
		rd, err := e.db.rawInsert(ctx, id, rows)
		if err != nil {
			return err
		}
		r.cpu = append(r.cpu, cpuRow{fmt.Sprintf("raw run %d", run), cpuSince(ctx, snap, e.srv, e.db)})
		if n, err := e.db.countLike(ctx, fmt.Sprintf("raw%d-%%", run)); err != nil || n != o.rows {
			return fmt.Errorf("raw run %d: %d rows in invitations (%v)", run, n, err)
		}
		r.rawT = append(r.rawT, rd)
		logf("%s: raw run %d: %d rows in %v", kind, run, o.rows, rd.Round(time.Millisecond))
	}

	if o.analyze {
		if err := analyze(ctx, o, kind, e, firstFile, r); err != nil {
			return fmt.Errorf("analysis: %w", err)
		}
	}
	r.collectWarnings("import", e.srv)
	return nil
}

// analyze times imports of the same size that stop at successive stages:
// every row invalid (upload, CSV, validation, GraphQL, no SQL), every row
// already invited (plus the lookups), and a dry run (the whole pipeline,
// inserts included, rolled back; no re-read of the invitations).
func analyze(ctx context.Context, o options, kind string, e *env, firstFile []byte, r *report) error {
	invalid := make([]string, o.rows)
	for i := range invalid {
		invalid[i] = fmt.Sprintf("not-an-address-%06d", i)
	}
	invalidFile := csvOf(invalid)
	steps := []struct {
		name, note string
		file       func() []byte
		dry        bool
		check      func(counts) bool
	}{
		{"import, every row invalid", "upload + CSV + address parsing + GraphQL; no SQL beyond the request's own",
			func() []byte { return invalidFile }, false, func(c counts) bool { return c.Invalid == o.rows }},
		{"import, every row already invited", "the above + per-1000 lookups (members, expire, pending); no inserts",
			func() []byte { return firstFile }, false, func(c counts) bool { return c.AlreadyInvited == o.rows }},
		{"import, dryRun: true (fresh rows)", "the whole pipeline incl. all inserts, then ROLLBACK; skips re-reading invitations for the payload",
			func() []byte { return csvOf(emails("dry", o.rows)) }, true, func(c counts) bool { return c.Invited == o.rows }},
	}
	for _, st := range steps {
		row := analysisRow{name: st.name, note: st.note}
		for run := 1; run <= o.runs; run++ {
			if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
				return err
			}
			file := st.file()
			var before pgTableStats
			var bx [2]int64
			stats := kind == "postgres" && st.dry && run == 1
			if stats {
				// PostgreSQL flushes a backend's counters within
				// ~10 s of it going idle: let everything settle first.
				logf("%s: waiting 11 s for PostgreSQL statistics to settle", kind)
				time.Sleep(11 * time.Second)
				var err error
				if before, bx, err = e.db.pgStats(ctx); err != nil {
					return err
				}
			}
			snap := takeCPU(ctx, e.srv, e.db)
			c, d, err := e.srv.importFile(ctx, file, st.dry)
			if err != nil {
				return err
			}
			if run == 1 {
				r.cpu = append(r.cpu, cpuRow{st.name + ", run 1", cpuSince(ctx, snap, e.srv, e.db)})
			}
			if !st.check(c) {
				return fmt.Errorf("%s: unexpected counts %+v", st.name, c)
			}
			if stats {
				time.Sleep(11 * time.Second)
				after, ax, err := e.db.pgStats(ctx)
				if err != nil {
					return err
				}
				delta := &pgDelta{tables: map[string][4]int64{}, commit: ax[0] - bx[0], rollbk: ax[1] - bx[1]}
				for name, a := range after {
					b := before[name]
					delta.tables[name] = [4]int64{a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]}
				}
				r.pg = delta
			}
			row.t = append(row.t, d)
			logf("%s: %s: %v", kind, st.name, d.Round(time.Millisecond))
		}
		r.analysis = append(r.analysis, row)
	}
	if n, err := e.db.countLike(ctx, "dry-%"); err != nil || n != 0 {
		return fmt.Errorf("dry run wrote %d rows (%v)", n, err)
	}

	id, err := e.db.lookupIDs(ctx)
	if err != nil {
		return err
	}
	row := analysisRow{name: "raw, all three rows an invitation writes (invitations RETURNING id + deliveries + audit_events), 1 tx",
		note: "the baseline above, plus the two other tables: 3 rows and 3 statements per 1000"}
	for run := 1; run <= o.runs; run++ {
		if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
			return err
		}
		rows := makeRawRows(emails(fmt.Sprintf("rawall%d", run), o.rows))
		snap := takeCPU(ctx, e.srv, e.db)
		d, err := e.db.rawInsertAll(ctx, id, rows)
		if err != nil {
			return err
		}
		if run == 1 {
			r.cpu = append(r.cpu, cpuRow{"raw, all three tables, run 1", cpuSince(ctx, snap, e.srv, e.db)})
		}
		if n, err := e.db.countLike(ctx, fmt.Sprintf("rawall%d-%%", run)); err != nil || n != o.rows {
			return fmt.Errorf("raw (3 tables) run %d: %d rows in invitations (%v)", run, n, err)
		}
		row.t = append(row.t, d)
		logf("%s: %s: %v", kind, row.name, d.Round(time.Millisecond))
	}
	r.analysis = append(r.analysis, row)
	if kind != "postgres" {
		return nil
	}
	row = analysisRow{name: "raw COPY into invitations (PostgreSQL only), 1 tx",
		note: "the same rows as the raw baseline through lib/pq's CopyIn: a stricter baseline, for information"}
	for run := 1; run <= o.runs; run++ {
		if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
			return err
		}
		rows := makeRawRows(emails(fmt.Sprintf("rawcopy%d", run), o.rows))
		d, err := e.db.rawCopy(ctx, id, rows)
		if err != nil {
			return err
		}
		if n, err := e.db.countLike(ctx, fmt.Sprintf("rawcopy%d-%%", run)); err != nil || n != o.rows {
			return fmt.Errorf("raw copy run %d: %d rows in invitations (%v)", run, n, err)
		}
		row.t = append(row.t, d)
		logf("%s: %s: %v", kind, row.name, d.Round(time.Millisecond))
	}
	r.analysis = append(r.analysis, row)
	return nil
}

// benchMemory measures the resident memory a large import adds to an idle
// server: VmRSS when idle, VmHWM (peak) after the import.
func benchMemory(ctx context.Context, o options, kind, dir string, r *report) error {
	logf("%s: memory: starting a fresh server on a fresh database", kind)
	e, err := newEnv(ctx, o, kind, dir)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.srv.me(ctx); err != nil {
		return err
	}
	file := csvOf(emails("mem", o.memRows)) // generated before the idle reading: it lives in this process only
	time.Sleep(time.Second)
	pid := e.srv.pid()
	if r.memIdleRSS, r.memHWMBefore, err = procStatus(pid); err != nil {
		return err
	}
	c, d, err := e.srv.importFile(ctx, file, false)
	if err != nil {
		return err
	}
	if c.Invited != o.memRows {
		return fmt.Errorf("memory import: invited %d of %d (%+v)", c.Invited, o.memRows, c)
	}
	if r.memAfterRSS, r.memPeakHWM, err = procStatus(pid); err != nil {
		return err
	}
	r.memImport, r.memDone = d, true
	logf("%s: memory: idle RSS %s, peak %s after a %d-row import (%v)", kind, mib(r.memIdleRSS), mib(r.memPeakHWM), o.memRows, d.Round(time.Millisecond))
	r.collectWarnings("memory", e.srv)
	return nil
}

// benchThroughput runs single-address inviteUsers calls for a fixed
// duration with each number of concurrent clients.
func benchThroughput(ctx context.Context, o options, kind, dir string, r *report) error {
	logf("%s: throughput: starting a server on a fresh database", kind)
	e, err := newEnv(ctx, o, kind, dir)
	if err != nil {
		return err
	}
	defer e.close()
	for _, n := range o.clients {
		if _, _, err := e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
			return err
		}
		t := runThroughput(ctx, e.srv, e.db, n, o.warmup, o.duration)
		r.cpu = append(r.cpu, cpuRow{fmt.Sprintf("inviteUsers, %d client(s), %d calls", n, t.calls), t.cpu})
		var err error
		snap := takeCPU(ctx, e.srv, e.db)
		if t.drain, t.drained, err = e.db.DrainOutbox(ctx, o.drainTimeout); err != nil {
			return err
		}
		r.cpu = append(r.cpu, cpuRow{fmt.Sprintf("outbox drain after %d client(s) (%d messages)", n, t.drained), cpuSince(ctx, snap, e.srv, e.db)})
		logf("%s: throughput, %d clients: %d calls in %v = %.0f/s, p50 %v, p99 %v, %d errors",
			kind, n, t.calls, t.elapsed.Round(time.Millisecond), t.perSecond(), t.p50.Round(time.Microsecond*100), t.p99.Round(time.Microsecond*100), t.errors)
		r.tput = append(r.tput, t)
		if t.errors > 0 {
			return fmt.Errorf("%d clients: %d failed calls; first: %s", n, t.errors, t.firstErr)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	r.collectWarnings("throughput", e.srv)
	return nil
}

// target is a server that invites one address per call: Admit's binary
// or the -peer.
type target interface {
	inviteOne(ctx context.Context, email string) (time.Duration, error)
	pid() int
}

func runThroughput(ctx context.Context, s target, db *database, clients int, warmup, dur time.Duration) throughputResult {
	const maxErrors = 20
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(dur)
	tag := benchkit.RandomHex(3)
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				now := time.Now()
				mu.Lock()
				stop := errs >= maxErrors
				mu.Unlock()
				if stop || now.After(end) || ctx.Err() != nil {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				d, err := s.inviteOne(cctx, fmt.Sprintf("tp%d-%s-%02d-%07d@%s", clients, tag, w, i, benchDomain))
				cancel()
				done := time.Now()
				mu.Lock()
				switch {
				case err != nil:
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				case !now.Before(measureFrom) && !done.After(end):
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	// CPU over the measured window, read by a goroutine of its own.
	cpuDone := make(chan cpuUse, 1)
	go func() {
		time.Sleep(time.Until(measureFrom))
		snap := takeCPU(ctx, s, db)
		time.Sleep(time.Until(end))
		cpuDone <- cpuSince(ctx, snap, s, db)
	}()
	wg.Wait()
	t := throughputResult{clients: clients, calls: len(lat), errors: errs, elapsed: dur, firstErr: firstErr, cpu: <-cpuDone}
	if len(lat) > 0 {
		slices.Sort(lat)
		t.p50 = lat[(len(lat)-1)*50/100]
		t.p99 = lat[(len(lat)-1)*99/100]
		t.max = lat[len(lat)-1]
	}
	return t
}

// ---- machine ----

type machineInfo struct {
	cpus        int
	cpuModel    string
	goos        string
	arch        string
	goVersion   string
	kernel      string
	loadavg     string
	date        string
	binGo       string
	binRevision string
}

func (m machineInfo) oneLine() string {
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s, kernel %s, load average %s", m.cpus, m.cpuModel, m.goos, m.arch, m.goVersion, m.kernel, m.loadavg)
}

func machine(bin string) machineInfo {
	m := machineInfo{
		cpus: runtime.NumCPU(), goos: runtime.GOOS, arch: runtime.GOARCH, goVersion: runtime.Version(),
		date: time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.kernel = b.String()
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		m.binGo = bi.GoVersion
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			m.binRevision = rev
			if modified == "true" {
				m.binRevision += " (with uncommitted changes)"
			}
		}
	}
	return m
}
