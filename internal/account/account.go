// Package account signs people in and out, turns session tokens back into
// viewers, and creates organizations with their first admin.
package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"admit/ent"
	"admit/ent/organization"
	"admit/ent/role"
	"admit/ent/session"
	"admit/ent/user"
	"admit/internal/auth"
	"admit/internal/emaildomain"
	"admit/internal/password"
	"admit/internal/phone"
	"admit/internal/pubsub"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/throttle"
	"admit/internal/txn"
)

// Errors of sign-in. Both wrong email and wrong password give
// ErrInvalidCredentials.
var (
	ErrInvalidCredentials   = errors.New("the email or password is incorrect")
	ErrOrganizationRequired = errors.New("this address has accounts in several organizations; choose one with organizationID")
	// ErrInvalidPhone is a sign-in phone number that cannot be read.
	ErrInvalidPhone   = errors.New("not a valid phone number: give it with its country code (+44 …), or give organizationID to read it in the organization's default region")
	ErrInvalidSession = errors.New("session token is invalid or expired")
)

// Service holds what sign-in needs.
type Service struct {
	// Dialect is the database's (dialect.SQLite or dialect.Postgres).
	Dialect    string
	Keys       *secret.Keyring
	SessionTTL time.Duration
	Now        func() time.Time
	// SignInLimits bound failed sign-ins; the zero value limits nothing.
	SignInLimits SignInLimits
	// Broker, when set, hears about ended sessions (SessionTopic), so
	// that open websockets close at once, on every replica.
	Broker *pubsub.Broker
	// Kick wakes the outbox worker after a reset email commits; may be nil.
	Kick func()

	counter     throttle.Counter
	counterOnce sync.Once
}

// SignInLimits bound failed sign-ins per account (address) and per client
// address within Window. The counts are kept in the database, so every
// replica shares them.
type SignInLimits struct {
	PerAccount int
	PerAddress int
	Window     time.Duration
}

// DefaultSignInLimits are used unless configured otherwise.
var DefaultSignInLimits = SignInLimits{PerAccount: 10, PerAddress: 100, Window: 15 * time.Minute}

// SignInAttempt is one sign-in counted against its limits before the
// password is checked (BeginSignIn), and settled afterwards (EndSignIn).
type SignInAttempt struct {
	// Allowed is false when a limit is reached: the password must not be
	// checked, and the caller answers RATE_LIMITED.
	Allowed bool
	// RetryAfter is how long until the limit that refused it resets.
	RetryAfter time.Duration

	accountKey, addressKey string
	// Succeeded is set by SignIn when the credentials matched.
	Succeeded bool
}

func (s *Service) throttle() *throttle.Counter {
	s.counterOnce.Do(func() {
		s.counter.Dialect = s.dialect()
		s.counter.Now = s.Now
	})
	return &s.counter
}

// Login is who a sign-in names: an email address, or a phone number.
type Login struct {
	Email, Phone string
	// OrgID is the organization chosen, if any; a phone number without a
	// country code is read in its default region.
	OrgID *int
}

// Normalize returns the login's address normalized, or its phone in
// E.164: the form accounts are stored in and sign-ins are counted by, so
// that spelling a number differently neither finds another account nor
// escapes the limits.
func (l Login) Normalize(ctx context.Context, c *ent.Client) (email, phoneNumber string, err error) {
	if strings.TrimSpace(l.Phone) == "" {
		return NormalizeEmail(l.Email), "", nil
	}
	region := ""
	if l.OrgID != nil {
		org, err := c.Organization.Get(rule.System(ctx), *l.OrgID)
		if err != nil && !ent.IsNotFound(err) {
			return "", "", fmt.Errorf("account: organization: %w", err)
		}
		if org != nil {
			region = org.DefaultRegion
		}
	}
	n, err := phone.Normalize(l.Phone, region)
	if err != nil {
		return "", "", ErrInvalidPhone
	}
	return "", n, nil
}

// Key is what the per-account sign-in limit counts for the login.
func (l Login) Key(ctx context.Context, c *ent.Client) (string, error) {
	email, number, err := l.Normalize(ctx, c)
	if errors.Is(err, ErrInvalidPhone) {
		// It cannot sign anyone in; count it under what was typed.
		return "phone:" + strings.TrimSpace(l.Phone), nil
	}
	if number != "" {
		return "phone:" + number, err
	}
	return email, err
}

// BeginSignIn counts a sign-in attempt for a login key (Login.Key) from the client address
// ip, before any password is checked, so that concurrent attempts are
// counted exactly. c must be the plain client, not a transaction: the count
// has to outlive a refused mutation. An unknown address is counted and
// refused exactly like a known one, so a lockout tells nothing about who
// has an account.
func (s *Service) BeginSignIn(ctx context.Context, c *ent.Client, key, ip string) (*SignInAttempt, error) {
	l := s.SignInLimits
	a := &SignInAttempt{
		Allowed:    true,
		accountKey: "signin:account:" + throttle.Secret(key),
		addressKey: "signin:address:" + throttle.Address(ip),
	}
	ok, wait, err := s.throttle().Hit(ctx, c, a.addressKey, l.PerAddress, l.Window)
	if err != nil {
		return nil, fmt.Errorf("account.BeginSignIn: %w", err)
	}
	if !ok {
		a.Allowed, a.RetryAfter = false, wait
		return a, nil
	}
	ok, wait, err = s.throttle().Hit(ctx, c, a.accountKey, l.PerAccount, l.Window)
	if err != nil {
		return nil, fmt.Errorf("account.BeginSignIn: %w", err)
	}
	if !ok {
		a.Allowed, a.RetryAfter = false, wait
	}
	return a, nil
}

// BeginPasswordCheck counts a check of a signed-in user's current password
// (changePassword) like a sign-in: against the user (PerAccount) and the
// client address (PerAddress). Settle it with EndSignIn.
func (s *Service) BeginPasswordCheck(ctx context.Context, c *ent.Client, userID int, ip string) (*SignInAttempt, error) {
	l := s.SignInLimits
	a := &SignInAttempt{
		Allowed:    true,
		accountKey: fmt.Sprintf("password:user:%d", userID),
		addressKey: "signin:address:" + throttle.Address(ip),
	}
	for _, k := range []struct {
		key   string
		limit int
	}{{a.addressKey, l.PerAddress}, {a.accountKey, l.PerAccount}} {
		ok, wait, err := s.throttle().Hit(ctx, c, k.key, k.limit, l.Window)
		if err != nil {
			return nil, fmt.Errorf("account.BeginPasswordCheck: %w", err)
		}
		if !ok {
			a.Allowed, a.RetryAfter = false, wait
			return a, nil
		}
	}
	return a, nil
}

// EndSignIn settles an attempt after its mutation ended (c is again the
// plain client): a successful sign-in clears the account's failures and
// takes its attempt back from the client address, so only failures count.
func (s *Service) EndSignIn(ctx context.Context, c *ent.Client, a *SignInAttempt) error {
	if a == nil || !a.Succeeded {
		return nil
	}
	if err := s.throttle().Reset(ctx, c, a.accountKey); err != nil {
		return fmt.Errorf("account.EndSignIn: %w", err)
	}
	if err := s.throttle().Undo(ctx, c, a.addressKey); err != nil {
		return fmt.Errorf("account.EndSignIn: %w", err)
	}
	return nil
}

// NormalizeEmail lower-cases an address and normalizes its domain. It does
// not validate beyond that; invitation paths validate strictly.
func NormalizeEmail(s string) string {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return strings.ToLower(s)
	}
	d, err := emaildomain.Normalize(s[i+1:])
	if err != nil {
		return strings.ToLower(s)
	}
	return strings.ToLower(s[:i]) + "@" + d
}

// SignIn checks the credentials and opens a session, written with c (the
// mutation's transaction).
func (s *Service) SignIn(ctx context.Context, c *ent.Client, login Login, pw string) (token string, sess *ent.Session, u *ent.User, err error) {
	email, number, err := login.Normalize(ctx, c)
	if err != nil {
		return "", nil, nil, err
	}
	who := user.Email(email)
	if number != "" {
		who = user.Phone(number)
	}
	orgID := login.OrgID
	q := c.User.Query().
		Where(who, user.StatusEQ(user.StatusACTIVE)).
		// The caller has no viewer yet, so the payload's user carries the
		// edges a client asks for right after signing in.
		WithRole().
		WithOrganization()
	if orgID != nil {
		q = q.Where(user.OrganizationID(*orgID))
	}
	users, err := q.All(rule.System(ctx))
	if err != nil {
		return "", nil, nil, fmt.Errorf("account.SignIn: %w", err)
	}
	var matched []*ent.User
	for _, cand := range users {
		ok, err := password.Verify(ctx, cand.PasswordHash, pw)
		if err != nil {
			return "", nil, nil, fmt.Errorf("account.SignIn: %w", err)
		}
		if ok {
			matched = append(matched, cand)
		}
	}
	if len(users) == 0 {
		// Same cost as a wrong password.
		if _, err := password.Verify(ctx, "", pw); err != nil {
			return "", nil, nil, fmt.Errorf("account.SignIn: %w", err)
		}
	}
	switch len(matched) {
	case 0:
		return "", nil, nil, ErrInvalidCredentials
	case 1:
		u = matched[0]
	default:
		return "", nil, nil, ErrOrganizationRequired
	}
	token, sess, err = s.StartSession(ctx, c, u.ID)
	if err != nil {
		return "", nil, nil, err
	}
	if err := c.User.UpdateOneID(u.ID).SetLastSignInAt(s.Now()).Exec(rule.System(ctx)); err != nil {
		return "", nil, nil, fmt.Errorf("account.SignIn: %w", err)
	}
	return token, sess, u, nil
}

// Authenticate turns a session token into the viewer it stands for. It
// runs on every request, so it is one query joining session, user and role.
func (s *Service) Authenticate(ctx context.Context, c *ent.Client, token string) (*auth.Viewer, error) {
	if !secret.HasPurpose(secret.Session, token) {
		return nil, ErrInvalidSession
	}
	t := entsql.Dialect(s.dialect())
	ss, us, rs := t.Table(session.Table).As("s"), t.Table(user.Table).As("u"), t.Table(role.Table).As("r")
	query, args := t.Select(
		ss.C(session.FieldID), us.C(user.FieldID), us.C(user.FieldOrganizationID),
		rs.C(role.FieldID), rs.C(role.FieldAdmin), rs.C(role.FieldRank), us.C(user.FieldKind),
	).
		From(ss).
		Join(us).On(ss.C(session.FieldUserID), us.C(user.FieldID)).
		Join(rs).On(us.C(user.FieldRoleID), rs.C(role.FieldID)).
		Where(entsql.And(
			entsql.EQ(ss.C(session.FieldTokenHash), s.Keys.Hash(secret.Session, token)),
			entsql.GT(ss.C(session.FieldExpiresAt), s.Now()),
			entsql.EQ(us.C(user.FieldStatus), user.StatusACTIVE.String()),
		)).
		Query()
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("account.Authenticate: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("account.Authenticate: %w", err)
		}
		return nil, ErrInvalidSession
	}
	v := &auth.Viewer{}
	var kind string
	if err := rows.Scan(&v.SessionID, &v.UserID, &v.OrgID, &v.RoleID, &v.Admin, &v.Rank, &kind); err != nil {
		return nil, fmt.Errorf("account.Authenticate: %w", err)
	}
	v.Client = kind == user.KindCLIENT.String()
	return v, rows.Err()
}

func (s *Service) dialect() string {
	if s.Dialect == "" {
		return dialect.SQLite
	}
	return s.Dialect
}

// SignOut ends the viewer's session.
func (s *Service) SignOut(ctx context.Context, c *ent.Client, v *auth.Viewer) (bool, error) {
	n, err := c.Session.Delete().Where(session.ID(v.SessionID)).Exec(rule.System(ctx))
	if err != nil {
		return false, fmt.Errorf("account.SignOut: %w", err)
	}
	s.sessionsEnded(ctx, v.OrgID, v.UserID)
	return n == 1, nil
}

// SessionTopic is the pubsub topic of ended sessions: an event's ObjectID
// is the user whose sessions (some or all) ended.
const SessionTopic = "session"

// sessionsEnded announces, after commit, that sessions of userID ended.
func (s *Service) sessionsEnded(ctx context.Context, orgID, userID int) {
	if s.Broker == nil {
		return
	}
	publish := func() {
		s.Broker.Publish(pubsub.Event{Topic: SessionTopic, OrgID: orgID, Kind: "ENDED", ObjectID: userID, At: s.Now()})
	}
	txn.AfterCommit(ctx, publish)
}

// NewOrganization describes an organization and its first admin.
type NewOrganization struct {
	Name          string
	AdminEmail    string
	AdminPassword string
	AdminName     string
}

// CreateOrganization creates an organization, its built-in Admin and Member
// roles and its first admin in one transaction.
func CreateOrganization(ctx context.Context, c *ent.Client, in NewOrganization) (*ent.Organization, *ent.User, error) {
	return createOrganizationTx(ctx, c, in, false)
}

// errNotEmpty stops a bootstrap that finds an organization already there.
var errNotEmpty = errors.New("database already has an organization")

// createOrganizationTx creates the organization in one transaction. With
// onlyIfEmpty it first checks, inside that transaction, that no
// organization exists: SQLite's BEGIN IMMEDIATE (and PostgreSQL's advisory
// lock around start-up) make that check and the insert one step, so two
// servers starting together bootstrap once.
func createOrganizationTx(ctx context.Context, c *ent.Client, in NewOrganization, onlyIfEmpty bool) (*ent.Organization, *ent.User, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return nil, nil, errors.New("organization name is required")
	}
	email := NormalizeEmail(in.AdminEmail)
	if i := strings.LastIndexByte(email, '@'); i < 1 {
		return nil, nil, fmt.Errorf("admin email %q is not an email address", in.AdminEmail)
	} else if _, err := emaildomain.Normalize(email[i+1:]); err != nil {
		return nil, nil, fmt.Errorf("admin email %q: %w", in.AdminEmail, err)
	}
	if err := password.Check(in.AdminPassword); err != nil {
		return nil, nil, fmt.Errorf("admin password: %w", err)
	}
	hash, err := password.Hash(ctx, in.AdminPassword)
	if err != nil {
		return nil, nil, fmt.Errorf("account.CreateOrganization: %w", err)
	}
	ctx = rule.System(ctx)
	tx, err := c.Tx(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("account.CreateOrganization: %w", err)
	}
	if onlyIfEmpty {
		if n, err := tx.Organization.Query().Limit(1).Count(ctx); err != nil || n > 0 {
			_ = tx.Rollback()
			if err == nil {
				err = errNotEmpty
			}
			return nil, nil, err
		}
	}
	org, admin, err := createOrganization(ctx, tx.Client(), name, email, in.AdminName, hash)
	if err != nil {
		_ = tx.Rollback()
		return nil, nil, fmt.Errorf("account.CreateOrganization: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("account.CreateOrganization: %w", err)
	}
	return org.Unwrap(), admin.Unwrap(), nil
}

func createOrganization(ctx context.Context, c *ent.Client, name, email, adminName, hash string) (*ent.Organization, *ent.User, error) {
	org, err := c.Organization.Create().SetName(name).Save(ctx)
	if err != nil {
		return nil, nil, err
	}
	adminRole, err := c.Role.Create().
		SetOrganizationID(org.ID).
		SetName("Admin").
		SetDescription("Manages users, roles, invitations, links and domains.").
		SetAdmin(true).
		SetRank(100).
		SetBuiltin(true).
		Save(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Role.Create().
		SetOrganizationID(org.ID).
		SetName("Member").
		SetDescription("Uses the organization's workspaces.").
		SetRank(10).
		SetBuiltin(true).
		Save(ctx); err != nil {
		return nil, nil, err
	}
	admin, err := c.User.Create().
		SetOrganizationID(org.ID).
		SetName(adminName).
		SetEmail(email).
		SetPasswordHash(hash).
		SetRoleID(adminRole.ID).
		Save(ctx)
	if err != nil {
		return nil, nil, err
	}
	return org, admin, nil
}

// IsEmpty reports whether no organization exists yet (first run).
func IsEmpty(ctx context.Context, c *ent.Client) (bool, error) {
	n, err := c.Organization.Query().Limit(1).Count(rule.System(ctx))
	if err != nil {
		return false, fmt.Errorf("account.IsEmpty: %w", err)
	}
	return n == 0, nil
}

// BuiltinRole returns the organization's built-in Admin or Member role.
func BuiltinRole(ctx context.Context, c *ent.Client, orgID int, admin bool) (*ent.Role, error) {
	return c.Role.Query().
		Where(role.OrganizationID(orgID), role.Builtin(true), role.Admin(admin)).
		Only(rule.System(ctx))
}

// OrganizationByID loads an organization outside any viewer (operators).
func OrganizationByID(ctx context.Context, c *ent.Client, id int) (*ent.Organization, error) {
	return c.Organization.Query().Where(organization.ID(id)).Only(rule.System(ctx))
}

// EndSessions signs a user out everywhere (on deactivation).
func (s *Service) EndSessions(ctx context.Context, c *ent.Client, userID int) error {
	if _, err := c.Session.Delete().Where(session.UserID(userID)).Exec(rule.System(ctx)); err != nil {
		return fmt.Errorf("account.EndSessions: %w", err)
	}
	if s.Broker != nil {
		orgID, err := c.User.Query().Where(user.ID(userID)).Select(user.FieldOrganizationID).Int(rule.System(ctx))
		if err != nil {
			return fmt.Errorf("account.EndSessions: %w", err)
		}
		s.sessionsEnded(ctx, orgID, userID)
	}
	return nil
}

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	Created      bool
	Organization *ent.Organization
	Admin        *ent.User
	// GeneratedPassword is set when no password was configured; it is
	// printed once and never stored in plain text.
	GeneratedPassword string
}

// Bootstrap creates the first organization and admin on an empty database
// and does nothing otherwise.
func Bootstrap(ctx context.Context, c *ent.Client, in NewOrganization) (BootstrapResult, error) {
	empty, err := IsEmpty(ctx, c)
	if err != nil || !empty {
		return BootstrapResult{}, err
	}
	var res BootstrapResult
	if in.AdminPassword == "" {
		res.GeneratedPassword = rand.Text()[:20]
		in.AdminPassword = res.GeneratedPassword
	}
	if in.AdminName == "" {
		in.AdminName = "Admin"
	}
	res.Organization, res.Admin, err = createOrganizationTx(ctx, c, in, true)
	if errors.Is(err, errNotEmpty) {
		return BootstrapResult{}, nil
	}
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("first run: %w", err)
	}
	res.Created = true
	return res, nil
}

// Revalidate reports ErrInvalidSession when v's session has ended, expired
// or its user was deactivated since v was authenticated.
func (s *Service) Revalidate(ctx context.Context, c *ent.Client, v *auth.Viewer) error {
	ok, err := c.Session.Query().
		Where(
			session.ID(v.SessionID),
			session.ExpiresAtGT(s.Now()),
			session.HasUserWith(user.StatusEQ(user.StatusACTIVE)),
		).
		Exist(rule.System(ctx))
	if err != nil {
		return fmt.Errorf("account.Revalidate: %w", err)
	}
	if !ok {
		return ErrInvalidSession
	}
	return nil
}

// Current reloads v as it is now: the same session, still live, its user
// still active, with the role (and so the admin right and rank) the user
// holds now. Long-lived callers (websockets, subscriptions) use it so that a
// demotion, deactivation or sign-out takes effect on them at once.
func (s *Service) Current(ctx context.Context, c *ent.Client, v *auth.Viewer) (*auth.Viewer, error) {
	t := entsql.Dialect(s.dialect())
	ss, us, rs := t.Table(session.Table).As("s"), t.Table(user.Table).As("u"), t.Table(role.Table).As("r")
	query, args := t.Select(
		us.C(user.FieldOrganizationID), rs.C(role.FieldID), rs.C(role.FieldAdmin), rs.C(role.FieldRank), us.C(user.FieldKind),
	).
		From(ss).
		Join(us).On(ss.C(session.FieldUserID), us.C(user.FieldID)).
		Join(rs).On(us.C(user.FieldRoleID), rs.C(role.FieldID)).
		Where(entsql.And(
			entsql.EQ(ss.C(session.FieldID), v.SessionID),
			entsql.EQ(us.C(user.FieldID), v.UserID),
			entsql.GT(ss.C(session.FieldExpiresAt), s.Now()),
			entsql.EQ(us.C(user.FieldStatus), user.StatusACTIVE.String()),
		)).
		Query()
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("account.Current: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("account.Current: %w", err)
		}
		return nil, ErrInvalidSession
	}
	cur := *v
	var kind string
	if err := rows.Scan(&cur.OrgID, &cur.RoleID, &cur.Admin, &cur.Rank, &kind); err != nil {
		return nil, fmt.Errorf("account.Current: %w", err)
	}
	cur.Client = kind == user.KindCLIENT.String()
	return &cur, rows.Err()
}

// LiveSessions reports which of the sessions ids are still live: not
// ended, not expired, their user active (for open websockets).
func (s *Service) LiveSessions(ctx context.Context, c *ent.Client, ids []int) (map[int]bool, error) {
	live, err := c.Session.Query().
		Where(
			session.IDIn(ids...),
			session.ExpiresAtGT(s.Now()),
			session.HasUserWith(user.StatusEQ(user.StatusACTIVE)),
		).
		IDs(rule.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("account.LiveSessions: %w", err)
	}
	out := make(map[int]bool, len(live))
	for _, id := range live {
		out[id] = true
	}
	return out, nil
}

// StartSession opens a session for u (after sign-in or acceptance).
func (s *Service) StartSession(ctx context.Context, c *ent.Client, userID int) (string, *ent.Session, error) {
	token, hash := s.Keys.NewToken(secret.Session)
	sess, err := c.Session.Create().
		SetTokenHash(hash).
		SetUserID(userID).
		SetExpiresAt(s.Now().Add(s.SessionTTL)).
		Save(rule.System(ctx))
	if err != nil {
		return "", nil, fmt.Errorf("account.StartSession: %w", err)
	}
	return token, sess, nil
}
