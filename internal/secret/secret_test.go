package secret_test

import (
	"strings"
	"testing"

	"admit/internal/secret"
)

func TestDerivedTokens(t *testing.T) {
	k, err := secret.New(strings.Repeat("s", 40))
	if err != nil {
		t.Fatal(err)
	}
	nonce := secret.NewNonce()
	// Many ids, so MACs containing '_' and '-' (base64url) are covered.
	for id := 1; id < 2000; id++ {
		tok := k.Derive(secret.Invitation, id, 3, nonce)
		gotID, gen, ok := secret.ParseDerived(secret.Invitation, tok)
		if !ok || gotID != id || gen != 3 {
			t.Fatalf("ParseDerived(%q) = %d, %d, %v; want %d, 3, true", tok, gotID, gen, ok, id)
		}
		if !k.VerifyDerived(secret.Invitation, tok, id, 3, nonce) {
			t.Fatalf("token %q does not verify", tok)
		}
	}
	tok := k.Derive(secret.Invitation, 7, 1, nonce)
	for name, bad := range map[string]string{
		"other purpose":  strings.Replace(tok, "adi_", "adl_", 1),
		"other id":       strings.Replace(tok, "_7_", "_8_", 1),
		"leading zero":   strings.Replace(tok, "_7_", "_07_", 1),
		"truncated":      tok[:len(tok)-1],
		"session prefix": "ads_" + tok[4:],
	} {
		if id, gen, ok := secret.ParseDerived(secret.Invitation, bad); ok && k.VerifyDerived(secret.Invitation, bad, id, gen, nonce) {
			t.Errorf("%s: %q verified", name, bad)
		}
	}
	if k.VerifyDerived(secret.Invitation, tok, 7, 1, secret.NewNonce()) {
		t.Error("a token verified against another generation's nonce")
	}
	other, _ := secret.New(strings.Repeat("t", 40))
	if other.VerifyDerived(secret.Invitation, tok, 7, 1, nonce) {
		t.Error("a token verified under another server secret")
	}
}
