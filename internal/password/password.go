// Package password hashes passwords with argon2id (OWASP parameters:
// 19 MiB, 2 passes, 1 lane) in the PHC string format.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
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

// Hash returns the PHC-formatted argon2id hash of pw.
func Hash(pw string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, memoryKiB, passes, lanes, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// dummy is verified against when there is no account, so a wrong email
// costs as much time as a wrong password.
var dummy = Hash("admit-dummy-password")

// Verify reports whether pw matches hash. An empty hash (no account, or an
// account without a password) still costs one argon2 computation.
func Verify(hash, pw string) bool {
	if hash == "" {
		_, _ = verify(dummy, pw)
		return false
	}
	ok, err := verify(hash, pw)
	return err == nil && ok
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
