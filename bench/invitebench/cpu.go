//go:build linux

package main

import (
	"admit/bench/internal/benchkit"
	"context"
	"time"
)

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

func (d *database) pgBackends(ctx context.Context) map[int]int64 { return d.PGBackends(ctx) }

func takeCPU(ctx context.Context, s target, d *database) cpuSnapshot {
	c := cpuSnapshot{at: time.Now(), machine: benchkit.MachineJiffies(), self: benchkit.SelfCPU()}
	c.server, _ = benchkit.ProcJiffies(s.pid())
	c.pg = d.pgBackends(ctx)
	return c
}

// cpuSince returns the CPU used since before. PostgreSQL backends that
// ended in between are missed (the pool keeps its connections open).
func cpuSince(ctx context.Context, before cpuSnapshot, s target, d *database) cpuUse {
	after := takeCPU(ctx, s, d)
	u := cpuUse{
		wall:   after.at.Sub(before.at),
		busy:   benchkit.Jiffies((after.machine[0] - after.machine[1]) - (before.machine[0] - before.machine[1])),
		server: benchkit.Jiffies(after.server - before.server),
		self:   after.self - before.self,
		pg:     -1,
	}
	if before.pg != nil && after.pg != nil {
		var sum int64
		for pid, j := range after.pg {
			sum += j - before.pg[pid] // a new backend counts from 0
		}
		u.pg = benchkit.Jiffies(sum)
	}
	return u
}
