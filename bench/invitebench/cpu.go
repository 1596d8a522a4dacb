//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, 100 on every Linux this runs on (there is no sysconf
// without cgo).
const clkTck = 100

// cpuSnapshot records CPU time, so that a timed step can say where its
// wall-clock time went: the server process, PostgreSQL's backends for the
// benchmark database, this process, and everything else on the machine
// (other people's tests on a shared box).
type cpuSnapshot struct {
	at      time.Time
	machine [2]int64 // all jiffies, idle+iowait jiffies, over every CPU
	server  int64    // jiffies of the server process
	self    time.Duration
	pg      map[int]int64 // backend pid → jiffies
}

// cpuUse is the difference of two snapshots.
type cpuUse struct {
	wall   time.Duration
	busy   time.Duration // CPU time used by everything on the machine
	server time.Duration
	pg     time.Duration // -1 when not measured
	self   time.Duration
}

func (u cpuUse) other() time.Duration {
	o := u.busy - u.server - u.self
	if u.pg > 0 {
		o -= u.pg
	}
	return max(o, 0)
}

func procJiffies(pid int) (int64, error) {
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

func machineJiffies() [2]int64 {
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

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgBackends returns the backend pids serving the benchmark database, when
// PostgreSQL runs on this machine and its /proc entries are readable.
func (d *database) pgBackends(ctx context.Context) map[int]int64 {
	if d.kind != "postgres" || d.raw == nil {
		return nil
	}
	rows, err := d.raw.QueryContext(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
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
		j, err := procJiffies(pid)
		if err != nil {
			return nil // not local, or not readable
		}
		out[pid] = j
	}
	return out
}

func takeCPU(ctx context.Context, s target, d *database) cpuSnapshot {
	c := cpuSnapshot{at: time.Now(), machine: machineJiffies(), self: selfCPU()}
	c.server, _ = procJiffies(s.pid())
	c.pg = d.pgBackends(ctx)
	return c
}

func jiffies(n int64) time.Duration { return time.Duration(n) * time.Second / clkTck }

// cpuSince returns the CPU used since before. PostgreSQL backends that
// ended in between are missed (the pool keeps its connections open).
func cpuSince(ctx context.Context, before cpuSnapshot, s target, d *database) cpuUse {
	after := takeCPU(ctx, s, d)
	u := cpuUse{
		wall:   after.at.Sub(before.at),
		busy:   jiffies((after.machine[0] - after.machine[1]) - (before.machine[0] - before.machine[1])),
		server: jiffies(after.server - before.server),
		self:   after.self - before.self,
		pg:     -1,
	}
	if before.pg != nil && after.pg != nil {
		var sum int64
		for pid, j := range after.pg {
			sum += j - before.pg[pid] // a new backend counts from 0
		}
		u.pg = jiffies(sum)
	}
	return u
}
