//go:build linux

package main

import (
	"context"

	"admit/bench/internal/benchkit"
)

type (
	cpuSnap = benchkit.CPUSnapshot
	cpuUse  = benchkit.CPUUse
)

func takeCPU(ctx context.Context, s *server, d *database) cpuSnap {
	return benchkit.TakeCPU(ctx, s.pid(), d.DB)
}

func cpuSince(ctx context.Context, before cpuSnap, s *server, d *database) cpuUse {
	return benchkit.CPUSince(ctx, before, s.pid(), d.DB)
}
