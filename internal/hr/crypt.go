package hr

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"admit/internal/secret"
)

// sealVersion is the first byte of every sealed value; a future key or
// format change gets a new one.
const sealVersion byte = 1

// keyInfo names the HKDF key the credentials are sealed under.
const keyInfo = "hr-credentials"

// aad binds a sealed value to its organization and provider, so a value
// copied into another row does not open.
func aad(orgID int, provider string) []byte {
	return fmt.Appendf(nil, "admit/hr-credentials/v1\x00%d\x00%s", orgID, provider)
}

func gcm(keys *secret.Keyring) (cipher.AEAD, error) {
	block, err := aes.NewCipher(keys.Key(keyInfo))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts credentials with AES-256-GCM: version, 12-byte random
// nonce, ciphertext and tag.
func seal(keys *secret.Keyring, orgID int, provider string, creds map[string]string) ([]byte, error) {
	plain, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	g, err := gcm(keys)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(plain)+g.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:1+g.NonceSize()], plain, aad(orgID, provider)), nil
}

// errSealed is returned for a value that does not open: another secret
// key, a tampered row, or a row copied from another connection.
var errSealed = errors.New("the stored HR credentials cannot be decrypted (was ADMIT_SECRET_KEY changed?); connect again")

// open decrypts what seal wrote.
func open(keys *secret.Keyring, orgID int, provider string, sealed []byte) (map[string]string, error) {
	g, err := gcm(keys)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+g.NonceSize()+g.Overhead() || sealed[0] != sealVersion {
		return nil, errSealed
	}
	plain, err := g.Open(nil, sealed[1:1+g.NonceSize()], sealed[1+g.NonceSize():], aad(orgID, provider))
	if err != nil {
		return nil, errSealed
	}
	var creds map[string]string
	if err := json.Unmarshal(plain, &creds); err != nil {
		return nil, errSealed
	}
	return creds, nil
}

// Hint masks a secret to its last four characters, and shows nothing of
// secrets too short for four characters to be safe to show.
func Hint(s string) string {
	n := utf8.RuneCountInString(s)
	if n < 12 {
		return "••••"
	}
	r := []rune(s)
	return "••••" + string(r[n-4:])
}

// redact removes every credential value from s, for messages that quote
// provider or transport text.
func redact(s string, creds map[string]string) string {
	for _, v := range creds {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "••••")
		}
	}
	return s
}
