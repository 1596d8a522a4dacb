package importfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name string
		file string // "list.csv" when empty
		in   string
		want []Row
	}{
		{
			name: "phone and User ID columns; a row may have only a phone",
			in:   "Name,Email,Mobile Phone,User ID\nAda,,+44 20 7946 0958,E-1\nGrace,grace@x.com,,E-2\n,,,\n",
			want: []Row{{Line: 2, Name: "Ada", Phone: "+44 20 7946 0958", UserID: "E-1"}, {Line: 3, Email: "grace@x.com", Name: "Grace", UserID: "E-2"}},
		},
		{
			name: "a header naming only a phone column",
			in:   "phone\n020 7946 0958\n",
			want: []Row{{Line: 2, Phone: "020 7946 0958"}},
		},
		{
			name: "header with name",
			in:   "name,email\nJane Doe,jane@x.com\nJohn,john@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane Doe"}, {Line: 3, Email: "john@x.com", Name: "John"}},
		},
		{
			name: "header in any case, address column not first",
			in:   "Full Name,Company,E-Mail Address\nJane,Acme,jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}},
		},
		{
			name: "upper-case header with padding and underscore",
			in:   " Display_Name ;  EMAIL_ADDRESS \nJane;jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}},
		},
		{
			name: "header only email",
			in:   "EMAIL\njane@x.com\njohn@x.com",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}, {Line: 3, Email: "john@x.com", Name: ""}},
		},
		{
			name: "mail and e-mail headers",
			in:   "id,mail\n1,jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}},
		},
		{
			name: "email preferred over a postal address column",
			in:   "Address,Name,Email\n1 Main St,Jane,jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}},
		},
		{
			name: "address header alone",
			in:   "address\njane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}},
		},
		{
			name: "no header: first column with @, no name",
			in:   "Jane Doe,jane@x.com,Acme\nJohn,john@x.com,Acme\n",
			want: []Row{{Line: 1, Email: "jane@x.com", Name: ""}, {Line: 2, Email: "john@x.com", Name: ""}},
		},
		{
			name: "no header, single column",
			in:   "jane@x.com\njohn@x.com\n",
			want: []Row{{Line: 1, Email: "jane@x.com", Name: ""}, {Line: 2, Email: "john@x.com", Name: ""}},
		},
		{
			name: "semicolon delimiter",
			in:   "Name;Email\nDoe, Jane;jane@x.com\nRoe, Rick;rick@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Doe, Jane"}, {Line: 3, Email: "rick@x.com", Name: "Roe, Rick"}},
		},
		{
			name: "semicolons inside quotes do not pick the delimiter",
			in:   "\"a;b;c\",email\nJane,jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}},
		},
		{
			name: "tab delimiter",
			in:   "name\temail\nJane Doe\tjane@x.com\n\t\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane Doe"}},
		},
		{
			name: "tab delimiter keeps empty fields",
			in:   "name\tcompany\temail\nJane\t\tjane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}},
		},
		{
			name: "quoted names with commas",
			in:   "name,email\n\"Doe, Jane\",jane@x.com\n\"Roe, \"\"Rick\"\"\", rick@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Doe, Jane"}, {Line: 3, Email: "rick@x.com", Name: `Roe, "Rick"`}},
		},
		{
			name: "space before a quoted field",
			in:   "email, name\njane@x.com, \"Doe, Jane\"\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Doe, Jane"}},
		},
		{
			name: "BOM and CRLF",
			in:   "\xef\xbb\xbfEmail,Name\r\njane@x.com,Jane\r\njohn@x.com,John\r\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}, {Line: 3, Email: "john@x.com", Name: "John"}},
		},
		{
			name: "first and last name joined",
			in:   "First Name,Last Name,Email\nJane,Doe,jane@x.com\n,Roe,rick@x.com\nAnn,,ann@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane Doe"}, {Line: 3, Email: "rick@x.com", Name: "Roe"}, {Line: 4, Email: "ann@x.com", Name: "Ann"}},
		},
		{
			name: "name column wins over first/last",
			in:   "firstname,lastname,name,email\nJ,D,Jane Doe,jane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane Doe"}},
		},
		{
			name: "empty address cells and blank lines skipped, line numbers kept",
			in:   "name,email\nJane,jane@x.com\n\nNobody,\nShort\n,  \nJohn,john@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane"}, {Line: 7, Email: "john@x.com", Name: "John"}},
		},
		{
			name: "unparseable cells returned as written",
			in:   "email\nnot an address\n jane@x.com \na@x.com; b@x.com\n",
			want: []Row{{Line: 2, Email: "not an address", Name: ""}, {Line: 3, Email: "jane@x.com", Name: ""}, {Line: 4, Email: "a@x.com; b@x.com", Name: ""}},
		},
		{
			name: "multi-line quoted field: line of the record start",
			in:   "name,email\n\"Jane\nDoe\",jane@x.com\nJohn,john@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: "Jane\nDoe"}, {Line: 4, Email: "john@x.com", Name: "John"}},
		},
		{
			name: "ragged rows",
			in:   "email,name,notes\njane@x.com\njohn@x.com,John,a,b,c\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}, {Line: 3, Email: "john@x.com", Name: "John"}},
		},
		{
			name: "upper-case extension",
			file: "LIST.CSV",
			in:   "email\njane@x.com\n",
			want: []Row{{Line: 2, Email: "jane@x.com", Name: ""}},
		},
	}
	for _, tc := range tests {
		filename := tc.file
		if filename == "" {
			filename = "list.csv"
		}
		got, err := Read(strings.NewReader(tc.in), filename, DefaultLimits)
		if err != nil {
			t.Fatalf("%s: want no error, got %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: want %+v, got %+v", tc.name, tc.want, got)
		}
	}
}

func TestReadTXT(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Row
	}{
		{
			name: "one per line",
			in:   "jane@x.com\njohn@x.com\n",
			want: []Row{{Line: 1, Email: "jane@x.com", Name: ""}, {Line: 2, Email: "john@x.com", Name: ""}},
		},
		{
			name: "mixed separators and named forms",
			in:   "a@x.com, b@x.com; c@x.com\td@x.com\n\nJane Doe <jane@x.com>, \"Doe, John\" <john@x.com>\n   \ne@x.com\n",
			want: []Row{
				{Line: 1, Email: "a@x.com", Name: ""}, {Line: 1, Email: "b@x.com", Name: ""}, {Line: 1, Email: "c@x.com", Name: ""}, {Line: 1, Email: "d@x.com", Name: ""},
				{Line: 3, Email: "Jane Doe <jane@x.com>", Name: ""}, {Line: 3, Email: `"Doe, John" <john@x.com>`},
				{Line: 5, Email: "e@x.com", Name: ""},
			},
		},
		{
			name: "BOM and CRLF",
			in:   "\xef\xbb\xbfjane@x.com\r\n\r\njohn@x.com\r\n",
			want: []Row{{Line: 1, Email: "jane@x.com", Name: ""}, {Line: 3, Email: "john@x.com", Name: ""}},
		},
		{
			name: "garbage kept for the caller to report",
			in:   "hello\njane@x.com\n",
			want: []Row{{Line: 1, Email: "hello", Name: ""}, {Line: 2, Email: "jane@x.com", Name: ""}},
		},
		{
			name: "no trailing newline",
			in:   "jane@x.com",
			want: []Row{{Line: 1, Email: "jane@x.com", Name: ""}},
		},
	}
	for _, tc := range tests {
		got, err := Read(strings.NewReader(tc.in), "invites.Txt", DefaultLimits)
		if err != nil {
			t.Fatalf("%s: want no error, got %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: want %+v, got %+v", tc.name, tc.want, got)
		}
	}
}

func TestReadErrors(t *testing.T) {
	small := Limits{MaxBytes: 1000, MaxRows: 3}
	tests := []struct {
		name     string
		filename string
		in       string
		lim      Limits
		want     error
	}{
		{"xlsx", "list.xlsx", "email\njane@x.com\n", DefaultLimits, ErrUnsupportedType},
		{"no extension", "list", "jane@x.com", DefaultLimits, ErrUnsupportedType},
		{"csv is not the extension", "list.csv.exe", "jane@x.com", DefaultLimits, ErrUnsupportedType},
		{"type checked before reading", "x.pdf", "", DefaultLimits, ErrUnsupportedType},

		{"empty csv", "a.csv", "", DefaultLimits, ErrEmpty},
		{"empty txt", "a.txt", "", DefaultLimits, ErrEmpty},
		{"whitespace csv", "a.csv", " \r\n\t\n  ", DefaultLimits, ErrEmpty},
		{"whitespace txt", "a.txt", "\n\n   \n", DefaultLimits, ErrEmpty},
		{"only BOM", "a.csv", "\xef\xbb\xbf", DefaultLimits, ErrEmpty},
		{"BOM and newlines", "a.txt", "\xef\xbb\xbf\r\n", DefaultLimits, ErrEmpty},
		{"only separators txt", "a.txt", ",,;\n ; ,", DefaultLimits, ErrEmpty},
		{"header only", "a.csv", "name,email\n", DefaultLimits, ErrEmpty},
		{"header only with BOM and CRLF", "a.csv", "\xef\xbb\xbfEmail\r\n", DefaultLimits, ErrEmpty},
		{"header and empty address cells", "a.csv", "name,email\nJane,\nJohn,  \n", DefaultLimits, ErrEmpty},

		{"too large", "a.csv", strings.Repeat("a", 1001), small, ErrTooLarge},
		{"too many rows csv", "a.csv", "email\na@x.com\nb@x.com\nc@x.com\nd@x.com\n", small, ErrTooManyRows},
		{"too many rows txt", "a.txt", "a@x.com b@x.com\nc@x.com, d@x.com\n", small, ErrTooManyRows},

		{"PNG", "a.csv", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", DefaultLimits, ErrNotText},
		{"XLSX (zip) renamed", "a.csv", "PK\x03\x04\x14\x00\x06\x00", DefaultLimits, ErrNotText},
		{"NUL", "a.txt", "jane@x.com\x00\n", DefaultLimits, ErrNotText},
		{"UTF-16LE export", "a.csv", "\xff\xfee\x00m\x00a\x00i\x00l\x00", DefaultLimits, ErrNotText},
		{"invalid UTF-8 (Latin-1)", "a.csv", "name,email\nJ\xfcrgen,j@x.com\n", DefaultLimits, ErrNotText},
		{"escape byte", "a.txt", "jane@x.com\x1b[31m\n", DefaultLimits, ErrNotText},
		{"DEL", "a.txt", "jane@x.com\x7f\n", DefaultLimits, ErrNotText},

		{"no header, no @", "a.csv", "Jane,Doe\nx@y.com,z\n", DefaultLimits, ErrNoAddressColumn},
		{"header without address column", "a.csv", "name,company\nJane,Acme\n", DefaultLimits, ErrNoAddressColumn},

		{"bare quote", "a.csv", "email,name\njane@x.com,Jane \"JD\" Doe\n", DefaultLimits, ErrMalformed},
		{"unclosed quote", "a.csv", "email,name\njane@x.com,\"Jane\n", DefaultLimits, ErrMalformed},
		{"text after closing quote", "a.csv", "email\n\"jane@x.com\"x\n", DefaultLimits, ErrMalformed},
	}
	for _, tc := range tests {
		rows, err := Read(strings.NewReader(tc.in), tc.filename, tc.lim)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: want %v, got %v (rows %+v)", tc.name, tc.want, err, rows)
		}
		if rows != nil {
			t.Fatalf("%s: want no rows with an error, got %+v", tc.name, rows)
		}
		// The message adds what to do to the sentinel's text.
		if msg := err.Error(); len(msg) <= len(tc.want.Error())+10 {
			t.Fatalf("%s: want a helpful message, got %q", tc.name, msg)
		}
	}
}

func TestReadMalformedNamesLine(t *testing.T) {
	in := "email,name\njane@x.com,Jane\njohn@x.com,John \"JD\" Doe\n"
	_, err := Read(strings.NewReader(in), "a.csv", DefaultLimits)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("want ErrMalformed, got %v", err)
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want the message to name line 3, got %q", err)
	}
}

func TestReadLimitsAtBoundary(t *testing.T) {
	lim := Limits{MaxBytes: 64, MaxRows: 2}

	exact := "email\na@x.com\nb@x.com\n"
	exact += strings.Repeat(" ", int(lim.MaxBytes)-len(exact))
	rows, err := Read(strings.NewReader(exact), "a.csv", lim)
	if err != nil || len(rows) != 2 {
		t.Fatalf("exactly MaxBytes and MaxRows: want 2 rows, got %d, %v", len(rows), err)
	}

	_, err = Read(strings.NewReader(exact+" "), "a.csv", lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("MaxBytes+1: want ErrTooLarge, got %v", err)
	}
}

func TestReadZeroLimitsUseDefaults(t *testing.T) {
	rows, err := Read(strings.NewReader("a@x.com"), "a.txt", Limits{})
	if err != nil || len(rows) != 1 {
		t.Fatalf("zero Limits: want 1 row, got %d, %v", len(rows), err)
	}
	big := bytes.Repeat([]byte("a"), int(DefaultLimits.MaxBytes)+1)
	if _, err := Read(bytes.NewReader(big), "a.txt", Limits{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zero Limits, default MaxBytes+1: want ErrTooLarge, got %v", err)
	}
}

// countingReader counts the bytes handed out by an endless stream.
type countingReader struct {
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "a@x.com\n"[int(c.n+int64(i))%8]
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestReadIsBounded(t *testing.T) {
	lim := Limits{MaxBytes: 10_000, MaxRows: 1_000_000}
	for _, name := range []string{"a.csv", "a.txt"} {
		src := &countingReader{}
		_, err := Read(src, name, lim)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: endless stream: want ErrTooLarge, got %v", name, err)
		}
		if src.n > lim.MaxBytes+1 {
			t.Fatalf("%s: want at most %d bytes read, got %d", name, lim.MaxBytes+1, src.n)
		}
	}

	// Unsupported types are refused without reading at all.
	src := &countingReader{}
	if _, err := Read(src, "a.xlsx", lim); !errors.Is(err, ErrUnsupportedType) {
		t.Fatalf("xlsx: want ErrUnsupportedType, got %v", err)
	}
	if src.n != 0 {
		t.Fatalf("xlsx: want 0 bytes read, got %d", src.n)
	}
}

func TestReadPropagatesReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("email\n"), iotest.ErrReader(boom))
	_, err := Read(r, "a.csv", DefaultLimits)
	if !errors.Is(err, boom) {
		t.Fatalf("want the reader's error, got %v", err)
	}
}

func TestReadOneByteReader(t *testing.T) {
	in := "\xef\xbb\xbfName;Email\r\nDoe, Jane;jane@x.com\r\n"
	rows, err := Read(iotest.OneByteReader(strings.NewReader(in)), "a.csv", DefaultLimits)
	want := []Row{{Line: 2, Email: "jane@x.com", Name: "Doe, Jane"}}
	if err != nil || !reflect.DeepEqual(rows, want) {
		t.Fatalf("want %+v, got %+v, %v", want, rows, err)
	}
}

func TestDetectDelimiter(t *testing.T) {
	tests := []struct {
		in   string
		want rune
	}{
		{"email", ','},
		{"a,b", ','},
		{"a;b", ';'},
		{"a;b,c", ','},
		{"a;b;c,d", ';'},
		{"\"x;y;z\",b", ','},
		{"a\tb", '\t'},
		{"a\tb,c", ','},
		{"a\tb;c", ';'},
		{"\n\n  \na;b\nc,d,e", ';'},
	}
	for _, tc := range tests {
		if got := detectDelimiter(tc.in); got != tc.want {
			t.Fatalf("detectDelimiter(%q): want %q, got %q", tc.in, tc.want, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{5 << 20, "5 MB"},
		{64 << 10, "64 KB"},
		{1000, "1000 bytes"},
		{1536, "1536 bytes"},
	}
	for _, tc := range tests {
		if got := formatBytes(tc.n); got != tc.want {
			t.Fatalf("formatBytes(%d): want %q, got %q", tc.n, tc.want, got)
		}
	}
}

// csv10k is a 10,000-row CSV with a header, as a typical export looks.
func csv10k() []byte {
	var b bytes.Buffer
	b.WriteString("\xef\xbb\xbfFirst Name,Last Name,Email,Company\r\n")
	for i := range 10_000 {
		fmt.Fprintf(&b, "First%d,\"Last, %d\",user%d@example.com,Company %d\r\n", i, i, i, i%50)
	}
	return b.Bytes()
}

func TestRead10k(t *testing.T) {
	rows, err := Read(bytes.NewReader(csv10k()), "big.csv", DefaultLimits)
	if err != nil {
		t.Fatalf("want no error, got %v", err)
	}
	if len(rows) != 10_000 {
		t.Fatalf("want 10000 rows, got %d", len(rows))
	}
	want := Row{Line: 10_001, Email: "user9999@example.com", Name: "First9999 Last, 9999"}
	if got := rows[len(rows)-1]; got != want {
		t.Fatalf("last row: want %+v, got %+v", want, got)
	}
}

func BenchmarkRead10k(b *testing.B) {
	data := csv10k()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := Read(bytes.NewReader(data), "big.csv", DefaultLimits)
		if err != nil || len(rows) != 10_000 {
			b.Fatalf("want 10000 rows, got %d, %v", len(rows), err)
		}
	}
}
