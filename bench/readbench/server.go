//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"admit/bench/internal/benchkit"
)

const (
	benchSecret   = "readbench-fixed-secret-key-0123456789abcdef" // ≥ 32 characters
	benchOrg      = "Bench"
	benchAdmin    = "admin@bench.example.com"
	benchPassword = "bench-password-123456"
	benchDomain   = "bench.example.com"
)

// server is one child process: the admit binary, or this program serving
// the hand-written handler.
type server struct {
	*benchkit.Process
	token string
}

// startServer starts bin on a free port. With dbURL set it is admit: it gets
// admit's environment, and the benchmark signs in as the bootstrap admin.
// Without, it is the handler (extra carries its settings).
func startServer(ctx context.Context, bin string, extra []string, dbURL, workDir string, importMaxRows int) (*server, error) {
	return startServerHook(ctx, bin, extra, dbURL, workDir, importMaxRows, nil)
}

// startServerHook is startServer with a hook called once the server is
// ready, before it is used.
func startServerHook(ctx context.Context, bin string, extra []string, dbURL, workDir string, importMaxRows int, ready func(pid int)) (*server, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logFile, err := os.CreateTemp(workDir, "server-*.log")
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		env = append(env, "GOMAXPROCS="+v)
	}
	if dbURL != "" {
		env = append(env,
			"ADDR="+addr, "PUBLIC_URL=http://"+addr, "DATABASE_URL="+dbURL,
			"ADMIT_SECRET_KEY="+benchSecret, "LOG_LEVEL=warn",
			"ADMIT_BOOTSTRAP_ORGANIZATION="+benchOrg, "ADMIT_BOOTSTRAP_ADMIN_EMAIL="+benchAdmin,
			"ADMIT_BOOTSTRAP_ADMIN_PASSWORD="+benchPassword,
			"IMPORT_MAX_ROWS="+strconv.Itoa(importMaxRows),
			"IMPORT_MAX_BYTES="+strconv.Itoa(importMaxRows*64+1<<20),
			"MAX_UPLOAD_BYTES="+strconv.Itoa(importMaxRows*64+2<<20),
		)
	} else {
		env = append(env, envBaselineAddr+"="+addr)
	}
	env = append(env, extra...)
	cmd := exec.Command(bin)
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
	if ready != nil {
		ready(s.pid())
	}
	if dbURL != "" {
		if err := s.signIn(ctx); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

func newRequest(ctx context.Context, url string, body []byte, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// pid is the server process's id (the binary itself, not a wrapper).
func (s *server) pid() int { return s.PID() }

func (s *server) stop() { s.Stop() }

func (s *server) signIn(ctx context.Context) error {
	b, err := s.post(ctx, `mutation($e: String!, $p: String!) { signIn(input: {email: $e, password: $p}) { token errors { code message } } }`,
		map[string]any{"e": benchAdmin, "p": benchPassword})
	if err != nil {
		return fmt.Errorf("signIn: %w", err)
	}
	var out struct {
		SignIn struct {
			Token *string `json:"token"`
		} `json:"signIn"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.SignIn.Token == nil {
		return fmt.Errorf("signIn refused: %s", b)
	}
	s.token = *out.SignIn.Token
	return nil
}

// importInvitations uploads a CSV of n fresh addresses.
func (s *server) importInvitations(ctx context.Context, n int) error {
	var csv strings.Builder
	csv.WriteString("email\n")
	tag := benchkit.RandomHex(3)
	for i := range n {
		fmt.Fprintf(&csv, "inv-%s-%06d@%s\n", tag, i, benchDomain)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($f: Upload!) { importInvitations(input: {file: $f}) { counts { invited } errors { code message } } }`,
		"variables": map[string]any{"f": nil},
	})
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0":["variables.f"]}`)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="0"; filename="list.csv"`)
	h.Set("Content-Type", "text/csv")
	part, _ := w.CreatePart(h)
	_, _ = part.Write([]byte(csv.String()))
	_ = w.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/query", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	req.Header.Set("Authorization", "Bearer "+s.token)
	rsp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	var out struct {
		Data struct {
			ImportInvitations struct {
				Counts struct{ Invited int } `json:"counts"`
			} `json:"importInvitations"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Data.ImportInvitations.Counts.Invited != n {
		return fmt.Errorf("importInvitations: %.300s", b)
	}
	return nil
}

// seed fills the database: invitations through the API, users, one
// workspace and its memberships with plain INSERTs (faster, and the read
// path does not care how they were made). It returns the workspace's ID.
func seed(ctx context.Context, o options, d *database, s *server) (int, error) {
	for done := 0; done < o.invitations; {
		n := min(10000, o.invitations-done)
		if err := s.importInvitations(ctx, n); err != nil {
			return 0, err
		}
		done += n
	}
	var org, member, admin int
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM organizations WHERE name = "+d.Ph(0), benchOrg).Scan(&org); err != nil {
		return 0, err
	}
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM roles WHERE organization_id = "+d.Ph(0)+" AND builtin AND NOT admin", org).Scan(&member); err != nil {
		return 0, err
	}
	if err := d.Raw.QueryRowContext(ctx, "SELECT id FROM users WHERE email = "+d.Ph(0), benchAdmin).Scan(&admin); err != nil {
		return 0, err
	}
	tx, err := d.Raw.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	now := time.Now()
	ins := "INSERT INTO users (created_at, updated_at, name, email, kind, status, organization_id, role_id) VALUES (" +
		d.Ph(0) + ", " + d.Ph(1) + ", " + d.Ph(2) + ", " + d.Ph(3) + ", 'INTERNAL', 'ACTIVE', " + d.Ph(4) + ", " + d.Ph(5) + ") RETURNING id"
	var users []int
	for i := range o.users {
		var id int
		if err := tx.QueryRowContext(ctx, ins, now, now, fmt.Sprintf("User %d", i), fmt.Sprintf("user-%06d@%s", i, benchDomain), org, member).Scan(&id); err != nil {
			return 0, fmt.Errorf("insert user: %w", err)
		}
		users = append(users, id)
	}
	var ws int
	if err := tx.QueryRowContext(ctx, "INSERT INTO workspaces (created_at, updated_at, name, type, description, link_enabled, link_allows_viewing, link_generation, organization_id, owner_id) VALUES ("+
		d.Ph(0)+", "+d.Ph(1)+", 'Bench workspace', 'GROUP', '', false, false, 0, "+d.Ph(2)+", "+d.Ph(3)+") RETURNING id", now, now, org, admin).Scan(&ws); err != nil {
		return 0, fmt.Errorf("insert workspace: %w", err)
	}
	for i := range min(o.members, len(users)) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO memberships (created_at, updated_at, role, status, organization_id, workspace_id, user_id) VALUES ("+
			d.Ph(0)+", "+d.Ph(1)+", 'MEMBER', 'JOINED', "+d.Ph(2)+", "+d.Ph(3)+", "+d.Ph(4)+")", now, now, org, ws, users[i]); err != nil {
			return 0, fmt.Errorf("insert membership: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if d.Kind == "postgres" {
		_, err = d.Raw.ExecContext(ctx, "ANALYZE")
	}
	return ws, err
}
