// Package importfile reads an uploaded .csv or .txt list of addresses for
// bulk invitations. It finds the address (and name) cells and reports their
// line numbers; it does not validate addresses, so that the caller can
// report every bad row with address.Parse's reason instead of failing the
// whole file on the first one.
package importfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"admit/internal/address"
)

// Sentinel errors. Read wraps them with a message that says what is wrong
// and how to fix it, so callers match with errors.Is and show Error().
var (
	// ErrUnsupportedType: the file name does not end in .csv or .txt.
	ErrUnsupportedType = errors.New("unsupported file type")
	// ErrEmpty: the file has no addresses (no bytes, only white space or a
	// byte order mark, or a CSV header with no rows under it).
	ErrEmpty = errors.New("empty file")
	// ErrTooLarge: the file is larger than Limits.MaxBytes.
	ErrTooLarge = errors.New("file too large")
	// ErrTooManyRows: the file has more than Limits.MaxRows addresses.
	ErrTooManyRows = errors.New("too many rows")
	// ErrNotText: the file is not UTF-8 text (a spreadsheet, image or a
	// UTF-16 export renamed to .csv).
	ErrNotText = errors.New("file is not text")
	// ErrNoAddressColumn: no column of a CSV could be identified as the
	// address column.
	ErrNoAddressColumn = errors.New("no address column")
	// ErrMalformed: the CSV could not be parsed (for example a stray quote).
	ErrMalformed = errors.New("malformed CSV")
)

// Limits bounds the work one upload can cause.
type Limits struct {
	MaxBytes int64 // largest accepted file; 0 or less means DefaultLimits.MaxBytes
	MaxRows  int   // most addresses (rows returned); 0 or less means DefaultLimits.MaxRows
}

// DefaultLimits fits any realistic invitation list while keeping one upload
// cheap to hold in memory and to validate.
var DefaultLimits = Limits{MaxBytes: 5 << 20, MaxRows: 50000}

// Row is one person found in the file: an address cell, a phone cell, or
// both.
type Row struct {
	Line  int    // 1-based line/record number in the file (header counts as line 1), for per-row reports
	Email string // the raw address cell as written, trimmed (not validated; the caller validates with address.Parse)
	Name  string // from a name column if any, else ""
	// Phone and UserID are the cells of a CSV's phone and User ID columns,
	// trimmed and not validated; "" without such columns.
	Phone, UserID string
}

// Read parses the file. filename decides the format by extension (.csv or
// .txt, case-insensitive); the upload's content type is advisory only, as
// browsers guess it from the same extension anyway, and is not consulted.
// Read never reads more than lim.MaxBytes+1 bytes from r.
//
// For .txt, each line is cut with address.Split, so Email may be a whole
// `Name <addr>` entry; Name is then "" and address.Parse yields the name.
// For .csv, Email is the address cell and Name the name column's cell.
func Read(r io.Reader, filename string, lim Limits) ([]Row, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultLimits.MaxBytes
	}
	if lim.MaxRows <= 0 {
		lim.MaxRows = DefaultLimits.MaxRows
	}

	ext := strings.ToLower(filepath.Ext(strings.TrimSpace(filename)))
	if ext != ".csv" && ext != ".txt" {
		shown := ext
		if shown == "" {
			shown = "no extension"
		}
		return nil, fmt.Errorf("%w: %q (%s); upload a .csv or .txt file, or export the spreadsheet as CSV",
			ErrUnsupportedType, filepath.Base(filename), shown)
	}

	// Read one byte past the limit, so "exactly MaxBytes" and "more" can be
	// told apart without ever reading an unbounded stream into memory.
	n := lim.MaxBytes
	if n < math.MaxInt64 {
		n++
	}
	data, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("reading the uploaded file: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: the file is larger than %s; split it into smaller files and upload each",
			ErrTooLarge, formatBytes(lim.MaxBytes))
	}

	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := checkText(data); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file has no addresses; add one address per line", ErrEmpty)
	}

	if ext == ".txt" {
		return readTXT(string(data), lim)
	}
	return readCSV(string(data), lim)
}

// checkText refuses anything that is not UTF-8 text: a renamed XLSX (a
// ZIP), an image or a UTF-16 export would otherwise turn into pages of
// nonsense "invalid address" rows.
func checkText(data []byte) error {
	const hint = "save or export the list as CSV (UTF-8) or plain text"
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: the file is not UTF-8 text; %s", ErrNotText, hint)
	}
	for _, c := range data {
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			return fmt.Errorf("%w: the file contains binary data; %s", ErrNotText, hint)
		}
	}
	return nil
}

// tooMany is the ErrTooManyRows error for lim.
func tooMany(lim Limits) error {
	return fmt.Errorf("%w: the file has more than %d addresses; split it into smaller files and upload each",
		ErrTooManyRows, lim.MaxRows)
}

// readTXT returns one Row per entry that address.Split finds on each line.
func readTXT(text string, lim Limits) ([]Row, error) {
	var rows []Row
	for i, line := range strings.Split(text, "\n") {
		for _, e := range address.Split(line) {
			if len(rows) == lim.MaxRows {
				return nil, tooMany(lim)
			}
			rows = append(rows, Row{Line: i + 1, Email: e})
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: the file has no addresses; add one address per line", ErrEmpty)
	}
	return rows, nil
}

// readCSV finds the address and name columns and returns one Row per
// record with a non-empty address cell.
func readCSV(text string, lim Limits) ([]Row, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comma = detectDelimiter(text)
	cr.FieldsPerRecord = -1 // spreadsheets often drop trailing empty cells
	cr.LazyQuotes = false   // a stray quote is reported, not guessed at
	cr.ReuseRecord = true
	// `a@x.com, "Doe, Jane"` is common in hand-written files. With a tab
	// delimiter this would also eat empty fields, so it is left off then.
	cr.TrimLeadingSpace = cr.Comma != '\t'

	var (
		rows    []Row
		cols    columns
		first   = true
		lineNum int
	)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, malformed(err)
		}
		lineNum, _ = cr.FieldPos(0)
		if first {
			first = false
			var isHeader bool
			cols, isHeader = headerColumns(rec)
			if isHeader {
				continue
			}
			cols = columns{addr: firstWithAt(rec), name: -1, first: -1, last: -1, phone: -1, id: -1}
			if cols.addr < 0 {
				return nil, fmt.Errorf("%w: the first row has no header (such as \"email\" or \"phone\") and no cell with an @; "+
					"add a header row with an \"email\" column", ErrNoAddressColumn)
			}
		}
		email, phone := cell(rec, cols.addr), cell(rec, cols.phone)
		if email == "" && phone == "" {
			continue
		}
		if len(rows) == lim.MaxRows {
			return nil, tooMany(lim)
		}
		rows = append(rows, Row{Line: lineNum, Email: email, Name: cols.nameOf(rec), Phone: phone, UserID: cell(rec, cols.id)})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: the file has no addresses under its header; add one address per row", ErrEmpty)
	}
	return rows, nil
}

// malformed wraps a CSV parse error in ErrMalformed, naming the line.
func malformed(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: line %d: %v; put double quotes around cells that contain quotes, commas or semicolons, "+
			"and double any quote inside them (\"\")", ErrMalformed, pe.Line, pe.Err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// detectDelimiter picks the delimiter from the first non-empty line:
// semicolon when it outnumbers commas (as European spreadsheet exports
// write), tab when the line has neither but has a tab, else comma.
func detectDelimiter(text string) rune {
	var line string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(l) != "" {
			line = l
			break
		}
	}
	var commas, semis, tabs int
	inQuote := false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == ',':
			commas++
		case r == ';':
			semis++
		case r == '\t':
			tabs++
		}
	}
	switch {
	case semis > commas:
		return ';'
	case commas == 0 && semis == 0 && tabs > 0:
		return '\t'
	}
	return ','
}

// columns holds the indexes of the interesting columns; -1 means absent.
type columns struct {
	addr, name, first, last, phone, id int
}

// nameOf returns the name for rec: the name column, or first and last
// name joined with a space.
func (c columns) nameOf(rec []string) string {
	if c.name >= 0 {
		return cell(rec, c.name)
	}
	if c.first >= 0 && c.last >= 0 {
		return strings.TrimSpace(cell(rec, c.first) + " " + cell(rec, c.last))
	}
	return ""
}

// Header names, after normalizeHeader. "address" alone is weaker than the
// others because a contact export may also have a postal address column.
var (
	emailHeaders = map[string]bool{
		"email": true, "e-mail": true, "mail": true, "email address": true,
		"e-mail address": true, "emailaddress": true, "e-mailaddress": true,
	}
	nameHeaders  = map[string]bool{"name": true, "full name": true, "fullname": true, "display name": true, "displayname": true}
	firstHeaders = map[string]bool{"first name": true, "firstname": true}
	lastHeaders  = map[string]bool{"last name": true, "lastname": true}
	phoneHeaders = map[string]bool{
		"phone": true, "phone number": true, "mobile": true, "mobile phone": true, "mobile number": true,
		"cell": true, "cell phone": true, "telephone": true, "tel": true,
	}
	idHeaders = map[string]bool{"user id": true, "userid": true, "external id": true, "externalid": true, "employee id": true}
)

// headerColumns reports whether rec is a header row (it names an address
// or a phone column) and, if so, which columns hold the address, the name,
// the phone and the User ID.
func headerColumns(rec []string) (columns, bool) {
	c := columns{addr: -1, name: -1, first: -1, last: -1, phone: -1, id: -1}
	weakAddr := -1
	for i, raw := range rec {
		h := normalizeHeader(raw)
		switch {
		case emailHeaders[h] && c.addr < 0:
			c.addr = i
		case h == "address" && weakAddr < 0:
			weakAddr = i
		case nameHeaders[h] && c.name < 0:
			c.name = i
		case firstHeaders[h] && c.first < 0:
			c.first = i
		case lastHeaders[h] && c.last < 0:
			c.last = i
		case phoneHeaders[h] && c.phone < 0:
			c.phone = i
		case idHeaders[h] && c.id < 0:
			c.id = i
		}
	}
	if c.addr < 0 {
		c.addr = weakAddr
	}
	return c, c.addr >= 0 || c.phone >= 0
}

// normalizeHeader lower-cases a header cell and folds "_" and runs of
// spaces to one space, so "E-Mail Address", "email_address" and
// " Email  Address " all match.
func normalizeHeader(s string) string {
	s = strings.ReplaceAll(strings.ToLower(s), "_", " ")
	return strings.Join(strings.Fields(s), " ")
}

// firstWithAt returns the index of the first cell containing '@', or -1.
func firstWithAt(rec []string) int {
	for i, v := range rec {
		if strings.Contains(v, "@") {
			return i
		}
	}
	return -1
}

// cell returns rec[i] trimmed, or "" when the record is too short (a
// spreadsheet may drop trailing empty cells).
func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// formatBytes renders a limit for people: "5 MB", "64 KB" or "100 bytes".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
