package server_test

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"admit/internal/server"
	"admit/internal/testutil"
)

// BenchmarkIdleSocketStacks opens b.N idle sockets (connection_init only),
// then subscribes each to membershipEvents, and reports the server's
// goroutines and goroutine stack bytes per socket at each step (after two
// GCs, which shrink stacks). The clients run in this process but hold no
// goroutine or stack while idle, so these are the server's. Heap is not
// reported: the clients' share of it cannot be told apart here (bench/wsbench
// measures the server process's RSS and heap from outside).
//
//	go test -run '^$' -bench IdleSocketStacks -benchtime 300x ./internal/server
func BenchmarkIdleSocketStacks(b *testing.B) {
	e := testutil.New(b, func(o *server.Options) {
		o.Limits.WSMaxSocketsPerUser = 1 << 20
	})
	org := e.NewOrg("Acme")
	url := serve(b, e)
	connect(b, url, transportWS, org.AdminToken, nil) // warm-up
	measure := func() (stack uint64, goroutines int) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.StackInuse, runtime.NumGoroutine()
	}
	b.ResetTimer()
	s0, g0 := measure()
	conns := make([]*websocket.Conn, b.N)
	for i := range conns {
		conns[i] = connect(b, url, transportWS, org.AdminToken, nil)
	}
	time.Sleep(200 * time.Millisecond)
	s1, g1 := measure()
	q, _ := json.Marshal(map[string]any{"query": `subscription { membershipEvents { type } }`})
	for _, c := range conns {
		sendMsg(b, c, wsMsg{ID: "1", Type: "subscribe", Payload: q})
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.Broker.Subscribers() < b.N && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s2, g2 := measure()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(g1-g0)/n, "goroutines/connected")
	b.ReportMetric(float64(s1-s0)/n/1024, "stack-KiB/connected")
	b.ReportMetric(float64(g2-g0)/n, "goroutines/subscribed")
	b.ReportMetric(float64(s2-s0)/n/1024, "stack-KiB/subscribed")
}
