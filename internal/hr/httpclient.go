package hr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// HTTP is how every provider reaches its API: https only, never to a
// loopback, private, link-local or otherwise internal address (checked on
// the address actually dialled, so DNS answers and redirects cannot slip
// past it), with bounded timeouts, and with 429 and 5xx answers retried
// with capped, jittered backoff that honours Retry-After.
type HTTP struct {
	// AllowPrivate lets connections reach internal addresses
	// (ADMIT_HR_ALLOW_PRIVATE_HOSTS; tests and on-premises mocks).
	AllowPrivate bool
	// TLS is the client TLS configuration; nil for the system roots.
	// Tests set it to trust their local servers.
	TLS *tls.Config
	// Timeout bounds one request, response body included (default 20s).
	Timeout time.Duration
	// RetryBudget bounds the time one call spends waiting between
	// attempts (default 30s): a Retry-After beyond it fails at once.
	RetryBudget time.Duration
	// MaxAttempts bounds the attempts of one call (default 4).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the backoff (defaults 500ms, 8s).
	BaseBackoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error

	once   sync.Once
	client *http.Client
}

// ErrHostNotAllowed refuses a dial or redirect to an internal address or
// a non-https URL.
var ErrHostNotAllowed = errors.New("the HR system's address is not allowed: it must be https and must not be a loopback, private or link-local address")

// blocked lists ranges that IsPrivate/IsLoopback/IsLinkLocal… miss.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 of any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4 of any IPv4 address
}

// PublicAddress reports whether addr may be dialled without AllowPrivate.
func PublicAddress(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

func (h *HTTP) httpClient() *http.Client {
	h.once.Do(h.build)
	return h.client
}

func (h *HTTP) build() {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		// Control runs after DNS resolution, on the address about to be
		// dialled: the one check a rebinding DNS answer cannot dodge.
		Control: func(_, address string, _ syscall.RawConn) error {
			if h.AllowPrivate {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !PublicAddress(ap.Addr()) {
				return ErrHostNotAllowed
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial on our behalf, past the check
		DialContext:           dialer.DialContext,
		TLSClientConfig:       h.TLS,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		IdleConnTimeout:       60 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	h.client = &http.Client{
		Transport: tr,
		Timeout:   cmpDur(h.Timeout, 20*time.Second),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return ErrHostNotAllowed
			}
			return nil // the dial check covers the new host
		},
	}
}

// StatusError is an HTTP answer the provider gave that is not success.
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Status) }

// do sends the request newReq builds, retrying 429 and 5xx answers. A
// successful (2xx) response is returned open; any other final answer is
// returned as a *StatusError with the body drained.
func (h *HTTP) do(ctx context.Context, newReq func(context.Context) (*http.Request, error)) (*http.Response, error) {
	attempts := h.MaxAttempts
	if attempts <= 0 {
		attempts = 4
	}
	budget := cmpDur(h.RetryBudget, 30*time.Second)
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		req, err := newReq(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := h.httpClient().Do(req)
		if err != nil {
			if errors.Is(err, ErrHostNotAllowed) {
				return nil, ErrHostNotAllowed
			}
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		serr := &StatusError{Status: resp.StatusCode}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
			return nil, serr
		}
		wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok {
			wait = h.backoff(attempt)
		}
		if attempt >= attempts || waited+wait > budget {
			return nil, serr
		}
		sleep := h.Sleep
		if sleep == nil {
			sleep = sleepCtx
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

// backoff is capped exponential backoff with full jitter.
func (h *HTTP) backoff(attempt int) time.Duration {
	base := cmpDur(h.BaseBackoff, 500*time.Millisecond)
	ceiling := cmpDur(h.MaxBackoff, 8*time.Second)
	d := base << min(attempt-1, 20)
	if d <= 0 || d > ceiling {
		d = ceiling
	}
	return rand.N(d) + 1
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func cmpDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
