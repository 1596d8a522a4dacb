//go:build linux

package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"admit/internal/secret"
)

// The hand-written handler: what a careful Go programmer writes for these
// three lists without GraphQL or an ORM. database/sql with statements
// prepared once, the same session check as account.Authenticate (one join
// of session, user and role by the token's HMAC), one query per list with
// the nested role and inviter joined in, encoding/json into the same
// response shape and fields. It runs as a child process of the benchmark
// (this binary re-executed with READBENCH_BASELINE_ADDR set), so that its
// CPU time is its own.

type baseline struct {
	db                            *sql.DB
	keys                          *secret.Keyring
	auth, inv, users, ws, members *sql.Stmt
}

const (
	envBaselineAddr   = "READBENCH_BASELINE_ADDR"
	envBaselineDriver = "READBENCH_BASELINE_DRIVER"
	envBaselineDSN    = "READBENCH_BASELINE_DSN"
)

func runBaseline() error {
	driver, dsn := os.Getenv(envBaselineDriver), os.Getenv(envBaselineDSN)
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(20) // as internal/db
	db.SetMaxIdleConns(20)
	keys, err := secret.New(benchSecret)
	if err != nil {
		return err
	}
	ph := func(i int) string {
		if driver == "postgres" {
			return "$" + strconv.Itoa(i)
		}
		return "?"
	}
	b := &baseline{db: db, keys: keys}
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.Prepare(q)
		return s
	}
	b.auth = prep(`SELECT s.id, u.id, u.organization_id, r.id, r.admin, r.rank, u.kind FROM sessions s
		JOIN users u ON s.user_id = u.id JOIN roles r ON u.role_id = r.id
		WHERE s.token_hash = ` + ph(1) + ` AND s.expires_at > ` + ph(2) + ` AND u.status = 'ACTIVE'`)
	b.inv = prep(`SELECT i.id, i.email, i.name, i.status, i.expires_at, i.created_at, r.id, r.name, u.id, u.name, u.email
		FROM invitations i JOIN roles r ON r.id = i.role_id LEFT JOIN users u ON u.id = i.inviter_id
		WHERE i.organization_id = ` + ph(1) + ` ORDER BY i.id LIMIT 101`)
	b.users = prep(`SELECT u.id, u.name, u.email, u.status, u.kind, r.id, r.name
		FROM users u JOIN roles r ON r.id = u.role_id WHERE u.organization_id = ` + ph(1) + ` ORDER BY u.id LIMIT 101`)
	b.ws = prep(`SELECT id, name FROM workspaces WHERE id = ` + ph(1) + ` AND organization_id = ` + ph(2))
	b.members = prep(`SELECT m.id, m.role, m.status, u.id, u.name, u.email, u.status, u.kind, r.id, r.name
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN roles r ON r.id = u.role_id
		WHERE m.workspace_id = ` + ph(1) + ` AND m.organization_id = ` + ph(2) + ` ORDER BY m.id LIMIT 101`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	ln, err := net.Listen("tcp", os.Getenv(envBaselineAddr))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /query", b.serve)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return hs.Serve(ln)
}

type gqlRequest struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables"`
}

type rawRole struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type rawUser struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Email *string `json:"email"`
}

type rawInvitation struct {
	ID        string    `json:"id"`
	Email     *string   `json:"email"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedAt time.Time `json:"createdAt"`
	Role      rawRole   `json:"role"`
	Inviter   *rawUser  `json:"inviter"`
}

type rawListUser struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Email  *string `json:"email"`
	Status string  `json:"status"`
	Kind   string  `json:"kind"`
	Role   rawRole `json:"role"`
}

type rawMember struct {
	ID     string      `json:"id"`
	Role   string      `json:"role"`
	Status string      `json:"status"`
	User   rawListUser `json:"user"`
}

type edge[T any] struct {
	Node T `json:"node"`
}

type pageInfo struct {
	HasNextPage bool    `json:"hasNextPage"`
	EndCursor   *string `json:"endCursor"`
}

type conn[T any] struct {
	Edges    []edge[T] `json:"edges"`
	PageInfo pageInfo  `json:"pageInfo"`
}

func cursor(id int) *string {
	s := base64.StdEncoding.EncodeToString([]byte(`{"id":` + strconv.Itoa(id) + `}`))
	return &s
}

func page[T any](nodes []T, lastID int) conn[T] {
	c := conn[T]{Edges: make([]edge[T], 0, min(len(nodes), 100))}
	for i, n := range nodes {
		if i == 100 {
			c.PageInfo.HasNextPage = true
			break
		}
		c.Edges = append(c.Edges, edge[T]{n})
	}
	if len(c.Edges) > 0 {
		c.PageInfo.EndCursor = cursor(lastID)
	}
	return c
}

func (b *baseline) serve(w http.ResponseWriter, r *http.Request) {
	var req gqlRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !secret.HasPurpose(secret.Session, tok) {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	var sid, uid, org, rid, rank int
	var admin bool
	var kind string
	if err := b.auth.QueryRowContext(ctx, b.keys.Hash(secret.Session, tok), time.Now()).Scan(&sid, &uid, &org, &rid, &admin, &rank, &kind); err != nil {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	var data any
	var err error
	switch {
	case strings.Contains(req.Query, "invitations("):
		data, err = b.invitations(ctx, org)
	case strings.Contains(req.Query, "users("):
		data, err = b.listUsers(ctx, org)
	case strings.Contains(req.Query, "members("):
		id, _ := strconv.Atoi(fmt.Sprint(req.Variables["id"]))
		data, err = b.workspace(ctx, org, id)
	default:
		err = fmt.Errorf("unknown query")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func nullStr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func (b *baseline) invitations(ctx context.Context, org int) (any, error) {
	rows, err := b.inv.QueryContext(ctx, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := time.Now()
	var out []rawInvitation
	last := 0
	for rows.Next() {
		var i rawInvitation
		var id, roleID int
		var email, uName, uEmail sql.NullString
		var uID sql.NullInt64
		if err := rows.Scan(&id, &email, &i.Name, &i.Status, &i.ExpiresAt, &i.CreatedAt, &roleID, &i.Role.Name, &uID, &uName, &uEmail); err != nil {
			return nil, err
		}
		i.ID, i.Email, i.Role.ID = strconv.Itoa(id), nullStr(email), strconv.Itoa(roleID)
		if i.Status == "PENDING" && !i.ExpiresAt.After(now) {
			i.Status = "EXPIRED"
		}
		if uID.Valid {
			i.Inviter = &rawUser{ID: strconv.FormatInt(uID.Int64, 10), Name: uName.String, Email: nullStr(uEmail)}
		}
		if len(out) < 100 {
			last = id
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return map[string]any{"invitations": page(out, last)}, nil
}

func (b *baseline) listUsers(ctx context.Context, org int) (any, error) {
	rows, err := b.users.QueryContext(ctx, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rawListUser
	last := 0
	for rows.Next() {
		var u rawListUser
		var id, roleID int
		var email sql.NullString
		if err := rows.Scan(&id, &u.Name, &email, &u.Status, &u.Kind, &roleID, &u.Role.Name); err != nil {
			return nil, err
		}
		u.ID, u.Email, u.Role.ID = strconv.Itoa(id), nullStr(email), strconv.Itoa(roleID)
		if len(out) < 100 {
			last = id
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return map[string]any{"users": page(out, last)}, nil
}

func (b *baseline) workspace(ctx context.Context, org, id int) (any, error) {
	var ws struct {
		ID      string          `json:"id"`
		Name    string          `json:"name"`
		Members conn[rawMember] `json:"members"`
	}
	var wid int
	if err := b.ws.QueryRowContext(ctx, id, org).Scan(&wid, &ws.Name); err == sql.ErrNoRows {
		return map[string]any{"workspace": nil}, nil
	} else if err != nil {
		return nil, err
	}
	ws.ID = strconv.Itoa(wid)
	rows, err := b.members.QueryContext(ctx, wid, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rawMember
	last := 0
	for rows.Next() {
		var m rawMember
		var mid, uid, roleID int
		var email sql.NullString
		if err := rows.Scan(&mid, &m.Role, &m.Status, &uid, &m.User.Name, &email, &m.User.Status, &m.User.Kind, &roleID, &m.User.Role.Name); err != nil {
			return nil, err
		}
		m.ID, m.User.ID, m.User.Email, m.User.Role.ID = strconv.Itoa(mid), strconv.Itoa(uid), nullStr(email), strconv.Itoa(roleID)
		if len(out) < 100 {
			last = mid
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ws.Members = page(out, last)
	return map[string]any{"workspace": ws}, nil
}
