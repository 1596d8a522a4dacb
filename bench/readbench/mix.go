//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"admit/bench/internal/benchkit"
)

// The saturation mix (issue #13, item 5): -clients clients, each sending
// in turn a single-address inviteUsers, a list (invitations or users at
// first: 100, alternately) and `me`, for -duration after -warmup, against
// each binary of -bins in turn, each on a fresh database with the same
// seed. It reports requests/s and p50/p99 per kind and overall.

var mixKinds = []string{"invite", "list", "me"}

func mix(ctx context.Context, o options, kind string) error {
	for _, bin := range o.bins {
		if err := mixOne(ctx, o, kind, bin); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
	}
	return nil
}

func mixOne(ctx context.Context, o options, kind, bin string) error {
	dir, err := os.MkdirTemp("", "readbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d, err := newDatabase(ctx, kind, o.pg, dir)
	if err != nil {
		return err
	}
	defer func() {
		if err := d.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}()
	srv, err := startServer(ctx, bin, nil, d.ServerURL, dir, o.invitations+10)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := d.Open(); err != nil {
		return err
	}
	if _, err := seed(ctx, o, d, srv); err != nil {
		return err
	}
	if _, _, err := d.DrainOutbox(ctx, 5*time.Minute); err != nil {
		return err
	}
	bodies := map[string][]byte{}
	for _, q := range []string{"invitations", "users"} {
		bodies[q], _ = json.Marshal(map[string]any{"query": queries[q]})
	}
	bodies["me"], _ = json.Marshal(map[string]any{"query": `{ me { id email } }`})
	tag := benchkit.RandomHex(3)
	var seq atomic.Int64
	lat := map[string][]time.Duration{}
	var mu sync.Mutex
	var errs atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	from, to := start.Add(o.warmup), start.Add(o.warmup+o.duration)
	var wg sync.WaitGroup
	var snap cpuSnap
	var snapOnce sync.Once
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := map[string][]time.Duration{}
			for i := c; ; i++ {
				t0 := time.Now()
				if t0.After(to) || ctx.Err() != nil {
					break
				}
				if !t0.Before(from) {
					snapOnce.Do(func() { snap = takeCPU(ctx, srv, d) })
				}
				k := mixKinds[i%3]
				var body []byte
				switch k {
				case "invite":
					body, _ = json.Marshal(map[string]any{
						"query":     `mutation($e: [String!]!) { inviteUsers(input: {emails: $e}) { counts { invited } errors { code message } } }`,
						"variables": map[string]any{"e": []string{fmt.Sprintf("mix-%s-%07d@%s", tag, seq.Add(1), benchDomain)}},
					})
				case "list":
					body = bodies[[]string{"invitations", "users"}[(i/3)%2]]
				default:
					body = bodies["me"]
				}
				b, err := srv.postRaw(ctx, body)
				if err == nil && k == "invite" && !strings.Contains(string(b), `"invited":1`) {
					err = fmt.Errorf("inviteUsers: %.200s", b)
				}
				t1 := time.Now()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if !t0.Before(from) && !t1.After(to) {
					mine[k] = append(mine[k], t1.Sub(t0))
				}
			}
			mu.Lock()
			for k, v := range mine {
				lat[k] = append(lat[k], v...)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	use := cpuSince(ctx, snap, srv, d)
	backlog, _ := d.OutboxBacklog(ctx)
	var all []time.Duration
	row := func(name string, l []time.Duration) string {
		if len(l) == 0 {
			return fmt.Sprintf("%s: none", name)
		}
		slices.Sort(l)
		return fmt.Sprintf("%s %.0f/s, p50 %v, p99 %v", name, float64(len(l))/o.duration.Seconds(),
			l[len(l)/2].Round(100*time.Microsecond), l[min(len(l)-1, len(l)*99/100)].Round(100*time.Microsecond))
	}
	var parts []string
	for _, k := range mixKinds {
		all = append(all, lat[k]...)
		parts = append(parts, row(k, lat[k]))
	}
	slices.Sort(all)
	fe, _ := firstErr.Load().(string)
	fmt.Printf("| %s | `%s` | %d | **%s** | %s | server %v/req, PostgreSQL %v/req | %d errors %s | %d | %s |\n", kind, bin, o.clients, row("all", all), strings.Join(parts, "; "),
		perReq(use.Server, len(all)), perReq(use.PG, len(all)), errs.Load(), fe, backlog, loadavg())
	return nil
}
