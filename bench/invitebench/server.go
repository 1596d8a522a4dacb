//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"admit/bench/internal/benchkit"
)

// Fixed settings of every benchmarked server.
const (
	benchSecret   = "invitebench-fixed-secret-key-0123456789abcdef" // ≥ 32 characters
	benchOrg      = "Bench"
	benchAdmin    = "admin@bench.example.com"
	benchPassword = "bench-password-123456"
	benchDomain   = "bench.example.com"
)

// server is one child process of the real admit binary.
type server struct {
	*benchkit.Process
	token string
}

// startServer starts bin on a fresh port with dbURL, waits for /readyz and
// signs in as the bootstrap admin. On error the child is already stopped.
func startServer(ctx context.Context, bin, dbURL, workDir string, importMaxRows int, uploadBytes int64) (*server, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logFile, err := os.CreateTemp(workDir, "admit-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	// A minimal environment: nothing from the caller's shell (SMTP_URL,
	// DATABASE_URL, …) leaks into the benchmarked server.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
		"ADDR=" + addr,
		"PUBLIC_URL=http://" + addr,
		"DATABASE_URL=" + dbURL,
		"ADMIT_SECRET_KEY=" + benchSecret,
		"LOG_LEVEL=warn",
		"ADMIT_BOOTSTRAP_ORGANIZATION=" + benchOrg,
		"ADMIT_BOOTSTRAP_ADMIN_EMAIL=" + benchAdmin,
		"ADMIT_BOOTSTRAP_ADMIN_PASSWORD=" + benchPassword,
		"IMPORT_MAX_ROWS=" + strconv.Itoa(importMaxRows),
		"IMPORT_MAX_BYTES=" + strconv.FormatInt(uploadBytes, 10),
		"MAX_UPLOAD_BYTES=" + strconv.FormatInt(uploadBytes+1<<20, 10),
	}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		env = append(env, "GOMAXPROCS="+v)
	}
	cmd.Env = env
	proc, err := benchkit.Start(cmd, "http://"+addr, logFile)
	if err != nil {
		return nil, err
	}
	s := &server{Process: proc}
	if err := s.WaitReady(ctx, "/readyz", 90*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.signIn(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// serverLogWarnings returns the log lines at WARN or ERROR level.
func (s *server) serverLogWarnings() []string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			out = append(out, l)
		}
	}
	return out
}

// gqlResponse is a GraphQL response with its data left raw.
type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func decodeGQL(status int, body []byte, out any) error {
	var r gqlResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("HTTP %d, undecodable body %.300q: %w", status, body, err)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("HTTP %d, GraphQL errors: %s %v", status, r.Errors[0].Message, r.Errors[0].Extensions)
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.300q", status, body)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	return nil
}

// gql posts one JSON GraphQL request and decodes data into out.
func (s *server) gql(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/query", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	rsp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	return decodeGQL(rsp.StatusCode, b, out)
}

type userError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// pid is the server process's id (the binary itself, not a wrapper).
func (s *server) pid() int { return s.PID() }

func (s *server) stop() { s.Stop() }

func (s *server) signIn(ctx context.Context) error {
	var out struct {
		SignIn struct {
			Token  *string     `json:"token"`
			Errors []userError `json:"errors"`
		} `json:"signIn"`
	}
	err := s.gql(ctx, `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token errors { code message } } }`,
		map[string]any{"e": benchAdmin, "p": benchPassword}, &out)
	if err != nil {
		return fmt.Errorf("signIn: %w", err)
	}
	if out.SignIn.Token == nil || len(out.SignIn.Errors) > 0 {
		return fmt.Errorf("signIn refused: %+v", out.SignIn.Errors)
	}
	s.token = *out.SignIn.Token
	return nil
}

// me is the trivial authenticated query.
func (s *server) me(ctx context.Context) error {
	var out struct {
		Me struct {
			Email string `json:"email"`
		} `json:"me"`
	}
	if err := s.gql(ctx, `{ me { email } }`, nil, &out); err != nil {
		return fmt.Errorf("me: %w", err)
	}
	if out.Me.Email != benchAdmin {
		return fmt.Errorf("me: got %q", out.Me.Email)
	}
	return nil
}

// counts mirrors InviteCounts.
type counts struct {
	Total            int `json:"total"`
	Invited          int `json:"invited"`
	Invalid          int `json:"invalid"`
	Duplicate        int `json:"duplicate"`
	AlreadyMember    int `json:"alreadyMember"`
	AlreadyInvited   int `json:"alreadyInvited"`
	DomainNotAllowed int `json:"domainNotAllowed"`
}

const importQuery = `mutation($f: Upload!, $d: Boolean) { importInvitations(input: {file: $f, dryRun: $d}) { dryRun counts { total invited invalid duplicate alreadyMember alreadyInvited domainNotAllowed } errors { code message } } }`

// multipartImport builds the GraphQL multipart request body for one file.
func multipartImport(filename string, content []byte, dryRun bool) (body []byte, contentType string, err error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	ops, err := json.Marshal(map[string]any{"query": importQuery, "variables": map[string]any{"f": nil, "d": dryRun}})
	if err != nil {
		return nil, "", err
	}
	if err := w.WriteField("operations", string(ops)); err != nil {
		return nil, "", err
	}
	if err := w.WriteField("map", `{"0":["variables.f"]}`); err != nil {
		return nil, "", err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="0"; filename=%q`, filename))
	h.Set("Content-Type", "text/csv")
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(content); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// importFile uploads content with importInvitations and returns the counts
// and the client-side wall-clock time from sending the request to having
// read the whole response. The multipart body is built before the clock
// starts.
func (s *server) importFile(ctx context.Context, content []byte, dryRun bool) (counts, time.Duration, error) {
	body, ct, err := multipartImport("list.csv", content, dryRun)
	if err != nil {
		return counts{}, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/query", bytes.NewReader(body))
	if err != nil {
		return counts{}, 0, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("GraphQL-Require-Preflight", "1")
	req.Header.Set("Authorization", "Bearer "+s.token)
	start := time.Now()
	rsp, err := s.Client.Do(req)
	if err != nil {
		return counts{}, 0, fmt.Errorf("importInvitations: %w", err)
	}
	b, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return counts{}, 0, fmt.Errorf("importInvitations: read: %w", err)
	}
	var out struct {
		ImportInvitations struct {
			DryRun bool        `json:"dryRun"`
			Counts counts      `json:"counts"`
			Errors []userError `json:"errors"`
		} `json:"importInvitations"`
	}
	if err := decodeGQL(rsp.StatusCode, b, &out); err != nil {
		return counts{}, 0, fmt.Errorf("importInvitations: %w", err)
	}
	if len(out.ImportInvitations.Errors) > 0 {
		return counts{}, 0, fmt.Errorf("importInvitations refused the file: %+v", out.ImportInvitations.Errors)
	}
	if out.ImportInvitations.DryRun != dryRun {
		return counts{}, 0, errors.New("importInvitations: dryRun flag not echoed")
	}
	return out.ImportInvitations.Counts, elapsed, nil
}

const inviteQuery = `mutation($e: [String!]!) { inviteUsers(input: {emails: $e}) { counts { invited } errors { code message } } }`

// inviteOne invites one address and returns the call's latency.
func (s *server) inviteOne(ctx context.Context, email string) (time.Duration, error) {
	body, err := json.Marshal(map[string]any{"query": inviteQuery, "variables": map[string]any{"e": []string{email}}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/query", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	start := time.Now()
	rsp, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	b, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	var out struct {
		InviteUsers struct {
			Counts counts      `json:"counts"`
			Errors []userError `json:"errors"`
		} `json:"inviteUsers"`
	}
	if err := decodeGQL(rsp.StatusCode, b, &out); err != nil {
		return 0, err
	}
	if len(out.InviteUsers.Errors) > 0 || out.InviteUsers.Counts.Invited != 1 {
		return 0, fmt.Errorf("inviteUsers(%s): invited %d, errors %+v", email, out.InviteUsers.Counts.Invited, out.InviteUsers.Errors)
	}
	return elapsed, nil
}

// procStatus reads VmRSS and VmHWM (in bytes) of pid.
func procStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, perr := strconv.ParseInt(f[1], 10, 64)
		if perr != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = v << 10
		case "VmHWM:":
			hwm = v << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}
