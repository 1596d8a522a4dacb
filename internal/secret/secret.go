// Package secret turns the server secret into purpose-bound keys (HKDF) and
// makes and hashes tokens. Tokens are 256 random bits behind a purpose
// prefix; only their keyed hash is ever stored, so a database dump yields no
// usable token and a token of one purpose never passes for another.
package secret

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MinLength is the shortest server secret accepted.
const MinLength = 32

// Purpose names what a token is for; it picks the key and the prefix.
type Purpose string

// Token purposes.
const (
	Session    Purpose = "ads"
	Invitation Purpose = "adi"
	Link       Purpose = "adl"
	// WorkspaceLink is a workspace's join link; JoinRequest is a
	// requester's token (confirm, view, cancel).
	WorkspaceLink Purpose = "adw"
	JoinRequest   Purpose = "adj"
	// PasswordReset tokens are derived from a password_resets row.
	PasswordReset Purpose = "adp"
)

// Keyring holds keys derived from the server secret.
type Keyring struct {
	root []byte
}

// ErrTooShort is returned for a secret under MinLength characters.
var ErrTooShort = fmt.Errorf("ADMIT_SECRET_KEY must be at least %d characters (try: openssl rand -base64 32)", MinLength)

// New returns a keyring for secret.
func New(secret string) (*Keyring, error) {
	if len(secret) < MinLength {
		return nil, ErrTooShort
	}
	return &Keyring{root: []byte(secret)}, nil
}

// LoadOrCreateFile reads the secret kept at path, or writes a fresh random
// one there (mode 0600) on first run. It serves the embedded SQLite default,
// where restarts must keep sessions and links valid without configuration.
func LoadOrCreateFile(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("secret.LoadOrCreateFile(%q): %w", path, err)
	}
	s := rand.Text() + rand.Text() // 2 × 130 bits
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("secret.LoadOrCreateFile(%q): %w", path, err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("secret.LoadOrCreateFile(%q): %w", path, err)
	}
	return s, true, nil
}

// Key derives a 32-byte key for info, such as "token:ads" or "hr-api-key".
func (k *Keyring) Key(info string) []byte {
	key, err := hkdf.Key(sha256.New, k.root, nil, "admit/v1/"+info, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce; 32 always works
	}
	return key
}

// NewToken returns a fresh random token for p and the hash to store.
func (k *Keyring) NewToken(p Purpose) (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	token = string(p) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, k.Hash(p, token)
}

// Hash returns the stored form of token. A token with another purpose's
// prefix hashes to something no row of this purpose holds.
func (k *Keyring) Hash(p Purpose, token string) string {
	m := hmac.New(sha256.New, k.Key("token:"+string(p)))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// HasPurpose reports whether token carries p's prefix.
func HasPurpose(p Purpose, token string) bool {
	return strings.HasPrefix(token, string(p)+"_")
}

// Ephemeral returns a random secret for a process that keeps nothing
// (in-memory databases, tests).
func Ephemeral() string { return rand.Text() + rand.Text() }

// NewNonce returns 16 random bytes for a derived token's generation.
func NewNonce() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b
}

// Derive returns the token for object id at generation, keyed by the server
// secret and the generation's random nonce: `<prefix>_<id>_<gen>_<mac>`.
// Nothing about it is stored, so it can be rebuilt (to resend the same
// message, or show a link again) and dies when the generation moves on.
func (k *Keyring) Derive(p Purpose, id, generation int, nonce []byte) string {
	return fmt.Sprintf("%s_%d_%d_%s", p, id, generation, base64.RawURLEncoding.EncodeToString(k.mac(p, id, generation, nonce)))
}

func (k *Keyring) mac(p Purpose, id, generation int, nonce []byte) []byte {
	m := hmac.New(sha256.New, k.Key("derived:"+string(p)))
	fmt.Fprintf(m, "%d.%d.", id, generation)
	m.Write(nonce)
	return m.Sum(nil)
}

// ParseDerived reads the object id and generation from a derived token of
// purpose p, without verifying it.
func ParseDerived(p Purpose, token string) (id, generation int, ok bool) {
	rest, found := strings.CutPrefix(token, string(p)+"_")
	if !found {
		return 0, 0, false
	}
	parts := strings.SplitN(rest, "_", 3) // the MAC itself may hold '_'
	if len(parts) != 3 || len(parts[2]) != 43 {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(parts[0]+" "+parts[1], "%d %d", &id, &generation); err != nil || id <= 0 || generation <= 0 {
		return 0, 0, false
	}
	if fmt.Sprintf("%d_%d", id, generation) != parts[0]+"_"+parts[1] {
		return 0, 0, false // no leading zeros or signs: one spelling per token
	}
	return id, generation, true
}

// VerifyDerived reports, in constant time, whether token is the one Derive
// gives for these values.
func (k *Keyring) VerifyDerived(p Purpose, token string, id, generation int, nonce []byte) bool {
	want := k.Derive(p, id, generation, nonce)
	return hmac.Equal([]byte(token), []byte(want))
}
