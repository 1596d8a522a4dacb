//go:build linux

// Package benchkit is what the programs under bench/ share: a fresh,
// throw-away database per server process (a SQLite file, or a new
// PostgreSQL database dropped afterwards) with a raw database/sql handle on
// it, and CPU time read from /proc.
package benchkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"    // registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite"
)

// DB is one fresh, empty database for one server process.
type DB struct {
	Kind      string // "sqlite" or "postgres"
	ServerURL string // DATABASE_URL for the server
	Driver    string // database/sql driver for the raw side
	DSN       string
	Raw       *sql.DB
	drop      func() error
}

// SQLiteDSN mirrors internal/db.SQLiteDSN: the same pragmas the server
// sets (foreign keys, WAL, synchronous NORMAL, busy timeout, BEGIN
// IMMEDIATE), so the raw baseline writes under the same durability.
func SQLiteDSN(path string) string {
	q := url.Values{}
	for _, p := range []string{"foreign_keys(1)", "busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewDB makes a fresh database: a file in dir for SQLite, a new
// database on the -pg server for PostgreSQL. The raw connection is opened
// later, once the server has migrated the schema.
func NewDB(ctx context.Context, kind, pgURL, dir string) (*DB, error) {
	switch kind {
	case "sqlite":
		sub, err := os.MkdirTemp(dir, "sqlite-")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(sub, "admit.db")
		return &DB{
			Kind: kind, ServerURL: path, Driver: "sqlite", DSN: SQLiteDSN(path),
			drop: func() error { return os.RemoveAll(sub) },
		}, nil
	case "postgres":
		u, err := url.Parse(pgURL)
		if err != nil {
			return nil, fmt.Errorf("-pg: %w", err)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" && !strings.HasPrefix(h, "/") {
			return nil, fmt.Errorf("-pg must point at a local server (127.0.0.1), got host %q", h)
		}
		admin, err := sql.Open("postgres", pgURL)
		if err != nil {
			return nil, err
		}
		name := "admit_bench_" + RandomHex(6)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
			admin.Close()
			return nil, fmt.Errorf("CREATE DATABASE %s on -pg %s: %w (is PostgreSQL running?)", name, Redact(pgURL), err)
		}
		du := *u
		du.Path = "/" + name
		return &DB{
			Kind: kind, ServerURL: du.String(), Driver: "postgres", DSN: du.String(),
			drop: func() error {
				defer admin.Close()
				dctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
				return err
			},
		}, nil
	}
	return nil, fmt.Errorf("unknown -db %q (sqlite or postgres)", kind)
}

func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// Open connects the raw side (after the server migrated the schema).
func (d *DB) Open() error {
	if d.Raw != nil {
		return nil
	}
	db, err := sql.Open(d.Driver, d.DSN)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(4)
	d.Raw = db
	return nil
}

// Close disconnects and drops the database.
func (d *DB) Close() error {
	if d.Raw != nil {
		d.Raw.Close()
		d.Raw = nil
	}
	if d.drop != nil {
		err := d.drop()
		d.drop = nil
		return err
	}
	return nil
}

// Ph returns the i-th (0-based) bind parameter.
func (d *DB) Ph(i int) string {
	if d.Kind == "postgres" {
		return "$" + strconv.Itoa(i+1)
	}
	return "?"
}

// OutboxBacklog counts messages the server's outbox worker still has to
// send.
func (d *DB) OutboxBacklog(ctx context.Context) (int, error) {
	var n int
	err := d.Raw.QueryRowContext(ctx, "SELECT count(*) FROM deliveries WHERE status IN ('QUEUED', 'SENDING')").Scan(&n)
	return n, err
}

// DrainOutbox waits, at most limit, until the server's outbox worker has
// sent every queued message (to the log: no SMTP_URL), so that its work does
// not overlap the next timed step. It returns how long that took and how
// many messages were waiting.
func (d *DB) DrainOutbox(ctx context.Context, limit time.Duration) (time.Duration, int, error) {
	start := time.Now()
	first := -1
	for {
		n, err := d.OutboxBacklog(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("outbox backlog: %w", err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			return time.Since(start), first, nil
		}
		if time.Since(start) > limit {
			return time.Since(start), first, fmt.Errorf("outbox still has %d of %d messages after %v", n, first, limit)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ClkTck is USER_HZ, 100 on every Linux this runs on (there is no sysconf
// without cgo).
const ClkTck = 100

// ProcJiffies returns the user and system CPU jiffies of process pid.
func ProcJiffies(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ")": state(3) ppid … utime is field 14, stime 15 (1-based in
	// the whole line), so 11 and 12 here (0-based, state is 0).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// MachineJiffies returns all jiffies and idle+iowait jiffies over every CPU.
func MachineJiffies() [2]int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return [2]int64{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return [2]int64{}
	}
	var total, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return [2]int64{total, idle}
}

// SelfCPU is this process's CPU time.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PGBackends returns the backend pids serving the benchmark database, when
// PostgreSQL runs on this machine and its /proc entries are readable.
func (d *DB) PGBackends(ctx context.Context) map[int]int64 {
	if d.Kind != "postgres" || d.Raw == nil {
		return nil
	}
	rows, err := d.Raw.QueryContext(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return nil
		}
		j, err := ProcJiffies(pid)
		if err != nil {
			return nil // not local, or not readable
		}
		out[pid] = j
	}
	return out
}

// Jiffies turns a count of jiffies into time.
func Jiffies(n int64) time.Duration { return time.Duration(n) * time.Second / ClkTck }

// CPUSnapshot records CPU time, so that a timed step can say where its
// wall-clock time went: the server process, PostgreSQL's backends for the
// benchmark database, this process, and everything else on the machine
// (other people's tests on a shared box).
type CPUSnapshot struct {
	at      time.Time
	machine [2]int64 // all jiffies, idle+iowait jiffies, over every CPU
	server  int64    // jiffies of the server process
	self    time.Duration
	pg      map[int]int64 // backend pid → jiffies
}

// CPUUse is the difference of two snapshots.
type CPUUse struct {
	Wall   time.Duration
	Busy   time.Duration // CPU time used by everything on the machine
	Server time.Duration
	PG     time.Duration // -1 when not measured
	Self   time.Duration
}

// Other is the CPU time of everything but the server, PostgreSQL and this
// process.
func (u CPUUse) Other() time.Duration {
	o := u.Busy - u.Server - u.Self
	if u.PG > 0 {
		o -= u.PG
	}
	return max(o, 0)
}

// TakeCPU snapshots the machine, the server process pid and d's backends.
func TakeCPU(ctx context.Context, pid int, d *DB) CPUSnapshot {
	c := CPUSnapshot{at: time.Now(), machine: MachineJiffies(), self: SelfCPU()}
	c.server, _ = ProcJiffies(pid)
	c.pg = d.PGBackends(ctx)
	return c
}

// CPUSince returns the CPU used since before. PostgreSQL backends that
// ended in between are missed (the pool keeps its connections open).
func CPUSince(ctx context.Context, before CPUSnapshot, pid int, d *DB) CPUUse {
	after := TakeCPU(ctx, pid, d)
	u := CPUUse{
		Wall:   after.at.Sub(before.at),
		Busy:   Jiffies((after.machine[0] - after.machine[1]) - (before.machine[0] - before.machine[1])),
		Server: Jiffies(after.server - before.server),
		Self:   after.self - before.self,
		PG:     -1,
	}
	if before.pg != nil && after.pg != nil {
		var sum int64
		for pid, j := range after.pg {
			sum += j - before.pg[pid] // a new backend counts from zero
		}
		u.PG = Jiffies(sum)
	}
	return u
}

// Process is a server the benchmark started as a child process, with its
// log in a file and an HTTP client for it.
type Process struct {
	Cmd     *exec.Cmd
	Base    string // http://127.0.0.1:port
	LogPath string
	Client  *http.Client
	done    chan struct{}
	waitErr error
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// NewHTTPClient is a client for many concurrent calls to one local server.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Start runs cmd with its output (what the caller has not piped
// elsewhere) in logFile, serving at base. The child dies with this process
// even if it is killed hard.
func Start(cmd *exec.Cmd, base string, logFile *os.File) (*Process, error) {
	if cmd.Stdout == nil {
		cmd.Stdout = logFile
	}
	if cmd.Stderr == nil {
		cmd.Stderr = logFile
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{Cmd: cmd, Base: base, LogPath: logFile.Name(), done: make(chan struct{}), Client: NewHTTPClient()}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// LogTail returns the end of the process's log, for error messages.
func (p *Process) LogTail() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// WaitReady polls path (such as /readyz) until it answers 200, the
// process exits, or limit passes.
func (p *Process) WaitReady(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("server exited before it was ready (%v); log:\n%s", p.waitErr, p.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, p.Base+path, nil)
		rsp, err := p.Client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, rsp.Body)
			rsp.Body.Close()
		}
		cancel()
		if err == nil && rsp.StatusCode == http.StatusOK {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server not ready after %v; log:\n%s", limit, p.LogTail())
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit is how the process ended, once Done is closed.
func (p *Process) Exit() error { return p.waitErr }

// Stop sends SIGTERM, waits up to 40 s for a graceful exit, then kills.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	p.Client.CloseIdleConnections()
}
