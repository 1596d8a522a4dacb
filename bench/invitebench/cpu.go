//go:build linux

package main

import (
	"context"

	"admit/bench/internal/benchkit"
)

type (
	cpuSnapshot = benchkit.CPUSnapshot
	cpuUse      = benchkit.CPUUse
)

func takeCPU(ctx context.Context, s target, d *database) cpuSnapshot {
	return benchkit.TakeCPU(ctx, s.pid(), d.DB)
}

func cpuSince(ctx context.Context, before cpuSnapshot, s target, d *database) cpuUse {
	return benchkit.CPUSince(ctx, before, s.pid(), d.DB)
}
