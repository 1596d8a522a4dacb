package address

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

// validCases are entries Parse must accept, with the expected result.
var validCases = []struct {
	in, email, name string
}{
	{"jane@example.com", "jane@example.com", ""},
	{"  jane@example.com \n", "jane@example.com", ""},
	{"Jane@Example.COM", "jane@example.com", ""},
	{"jane@example.com.", "jane@example.com", ""},
	{"jane@Ex.COM.", "jane@ex.com", ""},
	{`"Jane Doe" <Jane.Doe+tag@Example.COM>`, "jane.doe+tag@example.com", "Jane Doe"},
	{"Jane Doe <jane@example.com>", "jane@example.com", "Jane Doe"},
	{"Jane Doe<jane@example.com>", "jane@example.com", "Jane Doe"},
	{"<jane@example.com>", "jane@example.com", ""},
	{"< jane@example.com >", "jane@example.com", ""},
	{`"" <jane@example.com>`, "jane@example.com", ""},
	{`"Doe, Jane" <jane@example.com>`, "jane@example.com", "Doe, Jane"},
	{`"Doe; Jane: Team" <jane@example.com>`, "jane@example.com", "Doe; Jane: Team"},
	{`"Jane \"JD\" Doe" <jane@example.com>`, "jane@example.com", `Jane "JD" Doe`},
	{"Zoë Ünal <zoe@example.com>", "zoe@example.com", "Zoë Ünal"},
	{"Jane (work) <jane@example.com>", "jane@example.com", "Jane (work)"},
	{"jane@bücher.de", "jane@xn--bcher-kva.de", ""},
	{"jane@BÜCHER.de", "jane@xn--bcher-kva.de", ""},
	{"jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de", ""},
	{"jane@sub.example.co.uk", "jane@sub.example.co.uk", ""},
	{"jane@123.example.com", "jane@123.example.com", ""},
	{"a@b.io", "a@b.io", ""},
	{"first.middle.last@example.com", "first.middle.last@example.com", ""},
	// Every atext character; "?=" is fine, only "=?" starts an encoded word.
	{"!#$%&'*+/?=^_`{|}~-@example.com", "!#$%&'*+/?=^_`{|}~-@example.com", ""},
	{"a=b?c@example.com", "a=b?c@example.com", ""},
	{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com", ""},
	// 64 + 1 + 189 = 254 bytes exactly.
	{longAddr(254), longAddr(254), ""},
}

// longAddr returns a valid address of exactly n bytes (n ≥ 70).
func longAddr(n int) string {
	local := strings.Repeat("l", 64)
	rest := n - len(local) - 1 - len(".com")
	var labels []string
	for rest > 0 {
		l := min(rest, 63)
		if rest-l == 1 { // avoid leaving a single byte that would need a dot of its own
			l--
		}
		labels = append(labels, strings.Repeat("d", l))
		rest -= l + 1
	}
	return local + "@" + strings.Join(labels, ".") + ".com"
}

func TestLongAddrHelper(t *testing.T) {
	for _, n := range []int{254, 255, 300} {
		if got := len(longAddr(n)); got != n {
			t.Fatalf("len(longAddr(%d)): want %d, got %d", n, n, got)
		}
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		email, name, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): want no error, got %v", tc.in, err)
		}
		if email != tc.email {
			t.Fatalf("Parse(%q) email: want %q, got %q", tc.in, tc.email, email)
		}
		if name != tc.name {
			t.Fatalf("Parse(%q) name: want %q, got %q", tc.in, tc.name, name)
		}
	}
}

// invalidCases are entries Parse must refuse; reason is a substring of the
// expected Error.Reason.
var invalidCases = []struct {
	in, reason string
}{
	// Empty.
	{"", "empty"},
	{"   \t\n", "empty"},
	{"<>", "no address"},
	{"Jane <>", "no address"},
	// One @.
	{"jane.example.com", "no @"},
	{"a@b@c.com", "more than one @"},
	{`"a@b"@c.com`, "more than one @"},
	{"@example.com", "before @ is empty"},
	{"jane@", "domain (after @) is empty"},
	// Local part characters.
	{`a"b@c.com`, `contains '"'`},
	{`"a b"@x.com`, "space"},
	{`"ab"@x.com`, `contains '"'`},
	{`a\b@x.com`, `contains '\\'`},
	{"a(comment)@x.com", "contains '('"},
	{"(comment)a@x.com", "contains '('"},
	{"a,b@x.com", "contains ','"},
	{"a:b@x.com", "contains ':'"},
	{"ü@x.com", "ASCII"},
	{"jäne@x.com", "ASCII"},
	{strings.Repeat("a", 65) + "@x.com", "longer than 64"},
	{".a@x.com", "starts or ends with a dot"},
	{"a.@x.com", "starts or ends with a dot"},
	{"a..b@x.com", "two dots"},
	{"=?utf-8?q?x?=@x.com", "encoded word"},
	{"a=?b@x.com", "encoded word"},
	// Display names.
	{"=?utf-8?B?Zm9v?= <x@y.com>", "encoded word"},
	{`"=?utf-8?B?Zm9v?=" <x@y.com>`, "encoded word"},
	{`"a@b" <x@y.com>`, "name contains"},
	{"a@b <x@y.com>", "name contains"},
	{"Doe, Jane <jane@x.com>", "double quotes"},
	{"team: <a@x.com>", "double quotes"},
	{`Jane "JD" Doe <jane@x.com>`, "stray quotation"},
	{`"Jane <jane@x.com>`, "not closed"},
	{`"Jane" Doe <jane@x.com>`, "after the quoted name"},
	{"Jane <jane@x.com", "do not match"},
	{"Jane jane@x.com>", "do not match"},
	{"Jane >jane@x.com<", "do not match"},
	{"<jane@x.com> trailing", "after the closing >"},
	{"<jane@x.com>.", "after the closing >"},
	{"<jane@x.com>,", "after the closing >"},
	{"<a@x.com> <b@x.com>", "more than one <"},
	{"Jane <<jane@x.com>>", "more than one <"},
	// Two recipients.
	{"a@x.com,b@x.com", "more than one address"},
	{"a@x.com, b@x.com", "more than one address"},
	{"a@x.com;b@x.com", "more than one address"},
	{"a@x.com b@x.com", "more than one address"},
	{"team: a@x.com;", "space"},
	{"team:a@x.com;", "contains ':'"},
	{"Jane <a@x.com, b@x.com>", "more than one address"},
	// Domains.
	{"x@[127.0.0.1]", "IP address"},
	{"x@[IPv6:::1]", "IP address"},
	{"x@127.0.0.1", "IP address"},
	{"x@1.2.3.4.", "IP address"},
	{"x@localhost", "no dot"},
	{"x@localhost.", "no dot"},
	{"x@example..com", "not valid"},
	{"x@-example.com", "not valid"},
	{"x@exa_mple.com", "not valid"},
	{"x@example.com..", "not valid"},
	{"x@example.123", "not valid"},
	{"x@" + strings.Repeat("a", 64) + ".com", "not valid"},
	// Control and invisible characters.
	{"x\n@y.com", "control character"},
	{"x@y.com\r\nBcc: z@w.com", "control character"},
	{"x@y.com\nBcc: z@w.com", "control character"},
	{"Jane\tDoe <x@y.com>", "control character"},
	{"x\x00@y.com", "control character"},
	{"x\x7f@y.com", "control character"},
	{"x@y\u0085.com", "control character"},
	{"\u202eJane <x@y.com>", "control character"},
	{"Jane \u2066x\u2069 <x@y.com>", "control character"},
	{"x@y.com\u200f", "control character"},
	{"Jane\u2028Doe <x@y.com>", "control character"},
	{"x\xff@y.com", "not valid text"},
	// Length after normalization.
	{longAddr(255), "longer than 254"},
	{strings.ToUpper(longAddr(255)), "longer than 254"},
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		email, name, err := Parse(tc.in)
		if err == nil {
			t.Fatalf("Parse(%q): want error, got email %q name %q", tc.in, email, name)
		}
		if email != "" || name != "" {
			t.Fatalf("Parse(%q): want empty results on error, got %q, %q", tc.in, email, name)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse(%q): want errors.Is(err, ErrInvalid), got %v", tc.in, err)
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Fatalf("Parse(%q): want *Error, got %T", tc.in, err)
		}
		if !strings.Contains(ae.Reason, tc.reason) {
			t.Fatalf("Parse(%q) reason: want one containing %q, got %q", tc.in, tc.reason, ae.Reason)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, _, err := Parse("  x@[127.0.0.1] ")
	want := `"x@[127.0.0.1]" is not a valid email address: the domain is an IP address`
	if err == nil || err.Error() != want {
		t.Fatalf("Error(): want %q, got %v", want, err)
	}

	// Control characters are escaped, not echoed.
	_, _, err = Parse("x@y.com\r\nBcc: z@w.com")
	if err == nil || strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("Error(): want control characters escaped, got %q", err)
	}

	// A pasted essay does not make an essay-length message.
	_, _, err = Parse(strings.Repeat("é", 500))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("Error(): want a short message, got %d bytes", len(err.Error()))
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		target error
		want   bool
	}{
		{ErrInvalid, true},
		{errors.New("invalid email address"), false},
		{nil, false},
	}
	err := error(&Error{Input: "x", Reason: "it has no @"})
	for _, tc := range tests {
		if got := errors.Is(err, tc.target); got != tc.want {
			t.Fatalf("errors.Is(*Error, %v): want %v, got %v", tc.target, tc.want, got)
		}
	}
	wrapped := errors.Join(errors.New("row 3"), err)
	if !errors.Is(wrapped, ErrInvalid) {
		t.Fatalf("errors.Is(wrapped, ErrInvalid): want true, got false")
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only separators", "  ,, ;", nil},
		{"only newlines", "\r\n\n\t \r\n", nil},
		{"one", "a@x.com", []string{"a@x.com"}},
		{"mixed separators", "a@x.com, b@x.com; c@x.com\n d@x.com\te@x.com",
			[]string{"a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"}},
		{"CRLF", "a@x.com\r\nb@x.com\r\n", []string{"a@x.com", "b@x.com"}},
		{"named forms", `Jane Doe <jane@x.com>, "Doe, John" <john@x.com>`,
			[]string{"Jane Doe <jane@x.com>", `"Doe, John" <john@x.com>`}},
		{"bare and named mixed", `a@x.com Jane Doe <jane@x.com> b@x.com; "Roe; Rick" <rick@x.com>,c@x.com`,
			[]string{"a@x.com", "Jane Doe <jane@x.com>", "b@x.com", `"Roe; Rick" <rick@x.com>`, "c@x.com"}},
		{"no space before bracket", "Jane<jane@x.com>,John<john@x.com>",
			[]string{"Jane<jane@x.com>", "John<john@x.com>"}},
		{"bracket only", "<a@x.com> <b@x.com>", []string{"<a@x.com>", "<b@x.com>"}},
		{"name spacing kept", "Jane   Doe   <jane@x.com>", []string{"Jane   Doe   <jane@x.com>"}},
		{"escaped quote in name", `"Jane \"JD\", Doe" <jane@x.com>, b@x.com`,
			[]string{`"Jane \"JD\", Doe" <jane@x.com>`, "b@x.com"}},
		{"quoted name with @ is still a name", `"a@b" <x@y.com>`, []string{`"a@b" <x@y.com>`}},
		{"commas inside brackets stay together", "Jane <a@x.com, b@x.com>", []string{"Jane <a@x.com, b@x.com>"}},
		{"name words without address kept together", "Jane Doe, a@x.com", []string{"Jane Doe", "a@x.com"}},
		{"name words before bare address", "Jane a@x.com", []string{"Jane", "a@x.com"}},
		{"unquoted comma splits the name", "Doe, Jane <jane@x.com>", []string{"Doe", "Jane <jane@x.com>"}},
		{"line break ends an open quote", "\"Jane, a@x.com\nb@x.com", []string{`"Jane, a@x.com`, "b@x.com"}},
		{"line break ends an open bracket", "Jane <a@x.com\nb@x.com", []string{"Jane <a@x.com", "b@x.com"}},
		{"line break ends a name", "Jane\n<a@x.com>", []string{"Jane", "<a@x.com>"}},
		{"unicode space separates", "a@x.com\u00a0b@x.com\u3000c@x.com", []string{"a@x.com", "b@x.com", "c@x.com"}},
		{"group syntax", "team: a@x.com, b@x.com;", []string{"team:", "a@x.com", "b@x.com"}},
		{"trailing junk stays attached", "<a@x.com>junk b@x.com", []string{"<a@x.com>junk", "b@x.com"}},
	}
	for _, tc := range tests {
		got := Split(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: Split(%q): want %q, got %q", tc.name, tc.in, tc.want, got)
		}
	}
}

// TestSplitThenParse checks the two functions together, as the invite box
// uses them.
func TestSplitThenParse(t *testing.T) {
	in := "Jane Doe <Jane@X.com>, \"Doe, John\" <john@x.com>\n bob@x.com; nobody; a@[1.2.3.4]"
	type result struct{ email, name string }
	var ok []result
	var bad []string
	for _, e := range Split(in) {
		email, name, err := Parse(e)
		if err != nil {
			bad = append(bad, e)
			continue
		}
		ok = append(ok, result{email, name})
	}
	wantOK := []result{{"jane@x.com", "Jane Doe"}, {"john@x.com", "Doe, John"}, {"bob@x.com", ""}}
	if !reflect.DeepEqual(ok, wantOK) {
		t.Fatalf("parsed: want %v, got %v", wantOK, ok)
	}
	wantBad := []string{"nobody", "a@[1.2.3.4]"}
	if !reflect.DeepEqual(bad, wantBad) {
		t.Fatalf("refused: want %q, got %q", wantBad, bad)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.in)
	}
	for _, tc := range invalidCases {
		f.Add(tc.in)
	}
	f.Add("a@x.com, b@x.com; c@x.com\n d@x.com\te@x.com")
	f.Add(`Jane Doe <jane@x.com>, "Doe, John" <john@x.com>`)
	f.Add("x@ｅｘａｍｐｌｅ．ｃｏｍ")
	f.Add("x@例え.テスト")
	f.Fuzz(func(t *testing.T, s string) {
		for _, e := range Split(s) {
			if strings.TrimSpace(e) != e || e == "" {
				t.Fatalf("Split(%q): want non-empty trimmed entries, got %q", s, e)
			}
			if strings.ContainsAny(e, "\r\n") {
				t.Fatalf("Split(%q): want no line breaks inside an entry, got %q", s, e)
			}
		}

		email, _, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): want ErrInvalid, got %v", s, err)
			}
			return
		}
		if n := strings.Count(email, "@"); n != 1 {
			t.Fatalf("Parse(%q) = %q: want exactly one @, got %d", s, email, n)
		}
		if len(email) > 254 {
			t.Fatalf("Parse(%q) = %q: want ≤ 254 bytes, got %d", s, email, len(email))
		}
		for _, r := range email {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r >= 0x80 {
				t.Fatalf("Parse(%q) = %q: want printable ASCII only, got %q", s, email, r)
			}
		}
		again, name, err := Parse(email)
		if err != nil || again != email || name != "" {
			t.Fatalf("Parse(Parse(%q) = %q): want itself, got %q, %q, %v", s, email, again, name, err)
		}
	})
}
