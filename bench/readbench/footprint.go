//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"admit/bench/internal/benchkit"
)

// footprint measures the server's resident memory (VmRSS) at ready, right
// after a burst of sign-ins (argon2id needs 19 MiB per hash), and each
// second for -settle afterwards (issue #13, item 4).
func footprint(ctx context.Context, o options, kind string) error {
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
	// startServer signs in once; the ready figure is read before that, in
	// the hook.
	var ready int64
	srv, err := startServerHook(ctx, o.bin, []string{"SIGNIN_LIMIT_PER_ACCOUNT=100000", "SIGNIN_LIMIT_PER_ADDRESS=100000"}, d.ServerURL, dir, 10, func(pid int) { ready = vmRSS(pid) })
	if err != nil {
		return err
	}
	defer srv.stop()
	time.Sleep(time.Second)
	afterOne := vmRSS(srv.pid())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &server{Process: &benchkit.Process{Base: srv.Base, Client: benchkit.NewHTTPClient()}}
			for range o.signIns / o.clients {
				if err := c.signIn(ctx); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	burst := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	after := vmRSS(srv.pid())
	fmt.Printf("| %s | %.1f MiB | %.1f MiB | %d sign-ins, %d at a time, in %v | %.1f MiB |", kind, mib(ready), mib(afterOne),
		o.signIns/o.clients*o.clients, o.clients, burst.Round(time.Millisecond), mib(after))
	for s := 1; s <= int(o.settle/time.Second); s++ {
		time.Sleep(time.Second)
		fmt.Printf(" %.1f", mib(vmRSS(srv.pid())))
	}
	anon, file := rssParts(srv.pid())
	fmt.Printf(" (last: anonymous %.1f, file-backed %.1f) |\n", mib(anon), mib(file))
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v << 10
		}
	}
	return 0
}

// rssParts returns RssAnon and RssFile: the heap and stacks, and the
// binary's pages read from disk.
func rssParts(pid int) (anon, file int64) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = v << 10
		case "RssFile:":
			file = v << 10
		}
	}
	return anon, file
}
