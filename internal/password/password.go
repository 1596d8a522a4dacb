// Package password hashes passwords with argon2id (OWASP parameters:
// 19 MiB, 2 passes, 1 lane) in the PHC string format.
//
// Each hash needs 19 MiB while it runs, so at most runtime.NumCPU() hashes
// or verifications run at once; the rest wait their turn (or give up when
// their context ends). Memory then stays bounded under any burst of
// sign-ins, and the waiting costs nothing the CPUs could have done anyway.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	keyLen    = 32
	saltLen   = 16

	// MinLength and MaxLength bound accepted passwords (in characters).
	MinLength = 10
	MaxLength = 256
)

// ErrPolicy is returned for a password outside the length bounds.
var ErrPolicy = fmt.Errorf("password must be %d to %d characters long", MinLength, MaxLength)

// Check reports whether pw is acceptable as a new password.
func Check(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinLength || n > MaxLength {
		return ErrPolicy
	}
	return nil
}

// slots holds one token per hash allowed to run at once.
var slots = make(chan struct{}, max(1, runtime.NumCPU()))

// Running reports how many hashes run now (for tests and metrics).
func Running() int { return len(slots) }

// Slots is how many hashes may run at once.
func Slots() int { return cap(slots) }

// acquire waits for a slot, as long as ctx allows.
func acquire(ctx context.Context) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("password: waiting for a hashing slot: %w", ctx.Err())
	}
}

// release frees a slot. When it was the last hash running, the process
// returns its memory to the system once hashing has been quiet for
// freeAfter: each hash leaves 19 MiB of garbage that Go's scavenger would
// otherwise hand back only slowly, so an idle server kept the peak of its
// last burst of sign-ins.
//
// Each hash also starts a collection (unless one is running): the
// collector's GOGC=400 would otherwise let a burst pile up five times the
// running hashes' 19 MiB before collecting.
func release() {
	<-slots
	if collecting.CompareAndSwap(false, true) {
		go func() {
			runtime.GC()
			collecting.Store(false)
		}()
	}
	if len(slots) == 0 {
		freeSoon()
	}
}

var collecting atomic.Bool

const freeAfter = time.Second

var freeTimer struct {
	sync.Mutex
	t *time.Timer
}

func freeSoon() {
	freeTimer.Lock()
	defer freeTimer.Unlock()
	if freeTimer.t == nil {
		freeTimer.t = time.AfterFunc(freeAfter, func() {
			if len(slots) == 0 {
				debug.FreeOSMemory()
			}
		})
		return
	}
	freeTimer.t.Reset(freeAfter)
}

// during, when set by a test, runs while a slot is held.
var during func()

// Hash returns the PHC-formatted argon2id hash of pw. It waits for a
// hashing slot and fails only when ctx ends first.
func Hash(ctx context.Context, pw string) (string, error) {
	if err := acquire(ctx); err != nil {
		return "", err
	}
	defer release()
	if during != nil {
		during()
	}
	return hash(pw), nil
}

func hash(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, memoryKiB, passes, lanes, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// dummy is verified against when there is no account, so a wrong email
// costs as much time as a wrong password. Only its parameters matter (the
// result is thrown away), so it is written out rather than hashed at start,
// which cost 19 MiB of heap before the server had done anything.
var dummy = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes,
	base64.RawStdEncoding.EncodeToString(make([]byte, saltLen)), base64.RawStdEncoding.EncodeToString(make([]byte, keyLen)))

// Verify reports whether pw matches hash. An empty hash (no account, or an
// account without a password) still costs one argon2 computation. It waits
// for a hashing slot; the error is set only when ctx ended first.
func Verify(ctx context.Context, encoded, pw string) (bool, error) {
	if err := acquire(ctx); err != nil {
		return false, err
	}
	defer release()
	if during != nil {
		during()
	}
	if encoded == "" {
		_, _ = verify(dummy, pw)
		return false, nil
	}
	ok, err := verify(encoded, pw)
	return err == nil && ok, nil
}

func verify(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("password: not an argon2id hash")
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("password: parameters: %w", err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password: salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("password: key: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
