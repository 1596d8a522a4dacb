//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Targets from the issue.
const (
	targetImportRatio = 3.0   // import ≤ 3× raw
	targetMemMiB      = 100.0 // peak < 100 MB above idle
	targetCallsPerSec = 500.0 // inviteUsers/s at 16 concurrent clients on PostgreSQL
)

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func secs(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func list(s series) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = secs(d)
	}
	return strings.Join(parts, ", ")
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**MISSED**"
}

func command() string {
	args := make([]string, 0, len(os.Args))
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " ?&*'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.TrimSpace("go run ./bench/invitebench " + strings.Join(args, " "))
}

func printMarkdown(w io.Writer, o options, m machineInfo, reports []*report) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("### invitebench, %s", m.date)
	p("")
	p("- Command: `go build -o %s . && %s`", o.bin, command())
	p("- Machine: %d CPUs (%s), %s/%s, kernel %s; load average at start %s", m.cpus, m.cpuModel, m.goos, m.arch, m.kernel, m.loadavg)
	p("- Go: benchmark %s; server binary %s, revision %s", m.goVersion, m.binGo, orDash(m.binRevision))
	p("")
	for _, r := range reports {
		printReport(p, o, r)
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func printReport(p func(string, ...any), o options, r *report) {
	p("#### %s", r.kind)
	p("")
	if len(r.importT) > 0 || len(r.tput) > 0 || r.memDone {
		p("| Measurement | min | median | per run / notes | target |")
		p("|---|---|---|---|---|")
	}
	if len(r.importT) > 0 && len(r.rawT) > 0 {
		im, rm := r.importT.median(), r.rawT.median()
		ratio := float64(im) / float64(rm)
		p("| importInvitations, %d rows, HTTP end to end | %s | %s | %s (%.0f rows/s at the median) | |",
			o.rows, secs(r.importT.min()), secs(im), list(r.importT), float64(o.rows)/im.Seconds())
		if len(r.tableBefore) > 0 {
			tb := make([]string, len(r.tableBefore))
			for i, n := range r.tableBefore {
				tb[i] = fmt.Sprint(n)
			}
			p("| (rows already in invitations before each import run) | | | %s | |", strings.Join(tb, ", "))
		}
		p("| raw multi-row INSERT into invitations, %d rows, 1 tx | %s | %s | %s (%.0f rows/s at the median) | |",
			o.rows, secs(r.rawT.min()), secs(rm), list(r.rawT), float64(o.rows)/rm.Seconds())
		p("| **ratio import / raw** (median / median) | %.1f× (min/min) | **%.1f×** | | ≤ %.0f× %s |",
			float64(r.importT.min())/float64(r.rawT.min()), ratio, targetImportRatio, verdict(ratio <= targetImportRatio))
		for _, a := range r.analysis {
			p("| %s, %d rows | %s | %s | %s — %s | |", a.name, o.rows, secs(a.t.min()), secs(a.t.median()), list(a.t), a.note)
		}
		if len(r.drains) > 0 {
			p("| outbox: sending the %d queued messages after an import (log sender) | %s | %s | %s — not part of the import time | |",
				o.rows, secs(series(r.drains).min()), secs(series(r.drains).median()), list(r.drains))
		}
	}
	if r.memDone {
		above := r.memPeakHWM - r.memIdleRSS
		p("| memory: idle VmRSS (after sign-in and `me`) | | %s | VmHWM before the import %s | |", mib(r.memIdleRSS), mib(r.memHWMBefore))
		p("| memory: VmHWM after a %d-row import | | %s | import took %s; VmRSS right after %s | |", o.memRows, mib(r.memPeakHWM), secs(r.memImport), mib(r.memAfterRSS))
		p("| **memory: peak − idle** | | **%s** | | < %.0f MB %s |", mib(above), targetMemMiB, verdict(float64(above)/(1<<20) < targetMemMiB))
	}
	for _, t := range r.tput {
		target := ""
		if r.kind == "postgres" && t.clients == 16 {
			target = fmt.Sprintf("≥ %.0f/s %s", targetCallsPerSec, verdict(t.perSecond() >= targetCallsPerSec))
		}
		p("| inviteUsers (1 address), %d client(s), %v after %v warm-up | | **%.0f calls/s** | %d calls; p50 %s, p99 %s, max %s; %d errors; outbox then sent %d messages in %s | %s |",
			t.clients, o.duration, o.warmup, t.perSecond(), t.calls, ms(t.p50), ms(t.p99), ms(t.max), t.errors, t.drained, secs(t.drain), target)
	}
	p("")
	if len(r.cpu) > 0 {
		p("Where the wall-clock time went (CPU time over each step, from /proc; PostgreSQL = the backends connected to the benchmark database; rest = everything else on the machine, mostly other people's work):")
		p("")
		p("| step | wall | server CPU | PostgreSQL CPU | benchmark client CPU | rest of machine CPU | machine busy |")
		p("|---|---|---|---|---|---|---|")
		for _, c := range r.cpu {
			pg := "—"
			if c.use.PG >= 0 {
				pg = secs(c.use.PG)
			}
			p("| %s | %s | %s | %s | %s | %s | %.0f%% of %d CPUs |", c.step, secs(c.use.Wall), secs(c.use.Server), pg, secs(c.use.Self), secs(c.use.Other()),
				100*c.use.Busy.Seconds()/(c.use.Wall.Seconds()*float64(cpus())), cpus())
		}
		p("")
	}
	if r.pg != nil {
		p("PostgreSQL counters for one %d-row dry-run import (pg_stat_user_tables deltas; the outbox worker's idle polls add ~1 deliveries scan each 2 s):", o.rows)
		p("")
		p("| table | seq_scan | idx_scan | n_tup_ins | n_tup_upd |")
		p("|---|---|---|---|---|")
		names := make([]string, 0, len(r.pg.tables))
		for n := range r.pg.tables {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := r.pg.tables[n]
			p("| %s | %d | %d | %d | %d |", n, v[0], v[1], v[2], v[3])
		}
		p("")
		p("Transactions: %d committed, %d rolled back.", r.pg.commit, r.pg.rollbk)
		p("")
	}
	for _, w := range r.warnings {
		p("- Server log: %s", w)
	}
	for _, e := range r.errs {
		p("- **Error:** %s", e)
	}
	if len(r.warnings)+len(r.errs) > 0 {
		p("")
	}
}
