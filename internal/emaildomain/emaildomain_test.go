package emaildomain_test

import (
	"errors"
	"strings"
	"testing"

	"admit/internal/emaildomain"
)

// label returns n copies of c: a DNS label of length n.
func label(c string, n int) string { return strings.Repeat(c, n) }

// longDomain is four labels and ".com", len 253 + extra.
func longDomain(extra int) string {
	return label("a", 63) + "." + label("b", 63) + "." + label("c", 63) + "." + label("d", 57+extra) + ".com"
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{" Sub.Example.com ", "sub.example.com"},
		{"\tsub.example.com\n", "sub.example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"ＥＸＡＭＰＬＥ.org", "example.org"},      // full-width letters
		{"example\uff0ecom", "example.com"}, // full-width full stop
		{"ex\u0430mple.com", "xn--exmple-4nf.com"},
		{"exa\u200bmple.com", "example.com"}, // UTS 46 maps a zero-width space to nothing, as browsers do
		{"a-b.example", "a-b.example"},
		{"123.example", "123.example"},
		{"example.co1", "example.co1"},
		{longDomain(0), longDomain(0)},
		{longDomain(0) + ".", longDomain(0)},
		{label("a", 63) + ".com", label("a", 63) + ".com"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := emaildomain.Normalize(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("Normalize(%q): want %q, got %q (%v)", tt.in, tt.want, got, err)
			}
			if again, err := emaildomain.Normalize(got); err != nil || again != got {
				t.Fatalf("Normalize(%q): want it unchanged, got %q (%v)", got, again, err)
			}
		})
	}
}

func TestNormalizeLookAlikeIsAnotherDomain(t *testing.T) {
	t.Parallel()
	latin, err := emaildomain.Normalize("example.com")
	if err != nil {
		t.Fatal(err)
	}
	cyrillic, err := emaildomain.Normalize("ex\u0430mple.com")
	if err != nil {
		t.Fatal(err)
	}
	if cyrillic == latin || !strings.HasPrefix(cyrillic, "xn--") {
		t.Fatalf("want the look-alike as its own xn-- name, got %q (Latin %q)", cyrillic, latin)
	}
}

func TestNormalizeRefuses(t *testing.T) {
	t.Parallel()
	if n := len(longDomain(1)); n != 254 {
		t.Fatalf("fixture: want 254 characters, got %d", n)
	}
	for _, in := range []string{
		"", " ", ".", "..", "localhost", "localhost.", "com",
		"exa mple.com", "exa\tmple.com", "exa\u00a0mple.com",
		"1.2.3.4", "1.2.3.4.", "[1.2.3.4]", "::1", "[::1]",
		"a@b.com", "a\uff20b.com", "-bad.com", "bad-.com", "ab--cd.com",
		"http://x.com", "x.com/", "x.com:25", `x\y.com`,
		"exam_ple.com", "example..com", ".example.com", "example.com..",
		longDomain(1), longDomain(1) + ".",
		label("a", 64) + ".com",
		"xn--a.com", "xn--.com",
		// Invalid UTF-8 is not a domain. (golang.org/x/net/idna passes the
		// bytes through as U+FFFD without an error.)
		"0.\xae", "ex\xaemple.com", "\xff.com",
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			got, err := emaildomain.Normalize(in)
			if !errors.Is(err, emaildomain.ErrInvalid) || got != "" {
				t.Fatalf("Normalize(%q): want ErrInvalid, got %q (%v)", in, got, err)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.com", "Example.COM", "example.com.", " Sub.Example.com ", "bücher.example",
		"ＥＸＡＭＰＬＥ.org", "ex\u0430mple.com", "xn--bcher-kva.example", "1.2.3.4", "a@b.com",
		"exam_ple.com", "example..com", longDomain(0), longDomain(1), "ß.de", "ǅ.example", "ｘｎ--bcher-kva.example",
		"\u0627\u0644\u0639\u0631\u0628\u064a\u0629.example", "a.b.c.d.e", "xn--a.com", "0.example",
		"0.\xae", // found by this fuzz test: invalid UTF-8 gave the non-idempotent "0.xn--zn7c"
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := emaildomain.Normalize(in)
		if err != nil {
			if !errors.Is(err, emaildomain.ErrInvalid) || out != "" {
				t.Fatalf("Normalize(%q): want \"\" and ErrInvalid on failure, got %q (%v)", in, out, err)
			}
			return
		}
		if out == "" || len(out) > 253 || strings.HasSuffix(out, ".") {
			t.Fatalf("Normalize(%q) = %q: want 1 to 253 characters without a trailing dot", in, out)
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Normalize(%q) = %q: want lower-case ASCII letters, digits, '-' and '.', got %q at %d", in, out, c, i)
			}
		}
		again, err := emaildomain.Normalize(out)
		if err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q (%v): want it idempotent", in, out, out, again, err)
		}
	})
}
