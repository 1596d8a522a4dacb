package hr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"admit/ent"
	"admit/ent/hrconnection"
	"admit/ent/hremployee"
	"admit/internal/account"
	"admit/internal/apperr"
	"admit/internal/audit"
	"admit/internal/auth"
	"admit/internal/invite"
	"admit/internal/rule"
	"admit/internal/secret"
)

// Service runs HR connections. Connect and Sync talk to the provider
// before they open a transaction, so a slow HR system never holds the
// database's write lock.
type Service struct {
	Client   *ent.Client
	Keys     *secret.Keyring
	Invites  *invite.Service
	Accounts *account.Service
	HTTP     *HTTP
	Now      func() time.Time
	Log      *slog.Logger
	// FetchTimeout bounds reading every employee of one connection
	// (default 2 minutes).
	FetchTimeout time.Duration
	// Lease is how long a running sync holds its connection (default
	// 10 minutes, longer than FetchTimeout): a replica that dies mid-sync
	// lets another take over after it.
	Lease time.Duration
}

// Limits of the settings.
const (
	MinSyncInterval = time.Hour
	MaxSyncInterval = 30 * 24 * time.Hour
)

// UserError is a refusal to show in a payload's errors.
type UserError struct {
	Code, Field, Message string
}

func (e *UserError) Error() string { return e.Message }

func userErr(code, field, msg string) *UserError { return &UserError{code, field, msg} }

// Payload error codes (extend enum ErrorCode in schema/hr.graphql).
const (
	CodeInvalidInput     = "INVALID_INPUT"
	CodeUnknownProvider  = "HR_UNKNOWN_PROVIDER"
	CodeAlreadyConnected = "HR_ALREADY_CONNECTED"
	CodeRejected         = "HR_CREDENTIALS_REJECTED"
	CodeUnreachable      = "HR_UNREACHABLE"
	CodeHostNotAllowed   = "HR_HOST_NOT_ALLOWED"
	CodeInvalidURL       = "HR_INVALID_URL"
	CodeBadResponse      = "HR_BAD_RESPONSE"
	CodeSyncInProgress   = "HR_SYNC_IN_PROGRESS"
	CodeNotFound         = "HR_EMPLOYEE_NOT_FOUND"
	CodeInactive         = "HR_EMPLOYEE_INACTIVE"
	CodeSyncFailed       = "HR_SYNC_FAILED"
)

// providerUserError maps a failed fetch to the code the admin sees.
func providerUserError(err error, field string) *UserError {
	var pe *ProviderError
	if !errors.As(err, &pe) {
		return nil
	}
	code := CodeBadResponse
	switch {
	case errors.Is(err, ErrRejected):
		code = CodeRejected
	case errors.Is(err, ErrUnreachable):
		code = CodeUnreachable
	case errors.Is(err, ErrHostNotAllowed):
		code = CodeHostNotAllowed
	}
	return userErr(code, field, pe.Message)
}

// Settings are the autopilot settings; nil leaves one unchanged.
type Settings struct {
	AutoInvite        *bool
	RoleID            *int
	ClearRole         bool
	SyncInterval      *time.Duration // 0 turns scheduled syncs off
	DeactivateLeavers *bool
}

func (st Settings) validate() *UserError {
	if st.SyncInterval != nil && *st.SyncInterval != 0 && (*st.SyncInterval < MinSyncInterval || *st.SyncInterval > MaxSyncInterval) {
		return userErr(CodeInvalidInput, "input.syncInterval", "syncInterval must be between 1h and 720h (30 days), or 0 to turn scheduled syncs off")
	}
	if st.ClearRole && st.RoleID != nil {
		return userErr(CodeInvalidInput, "input.roleID", "give roleID or clearRole, not both")
	}
	return nil
}

// ParseInterval reads a syncInterval ("24h", "90m"); "" and "0" are off.
func ParseInterval(s string) (time.Duration, *UserError) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, userErr(CodeInvalidInput, "input.syncInterval", "syncInterval must be a duration such as 24h or 90m")
	}
	return d, nil
}

// ConnectInput is a new connection.
type ConnectInput struct {
	Provider    string
	Credentials map[string]string
	BaseURL     string
	Settings    Settings
}

func (s *Service) now() time.Time { return s.Now() }

// db is the mutation's transaction when there is one, else the client.
func (s *Service) db(ctx context.Context) *ent.Client {
	if c := ent.FromContext(ctx); c != nil {
		return c
	}
	return s.Client
}

// write runs fn in the caller's transaction, or in a new one that commits
// only when fn succeeds. Hooks registered with OnCommit (the outbox wake-up,
// events) run after that commit.
func (s *Service) write(ctx context.Context, fn func(ctx context.Context, c *ent.Client) error) error {
	if c := ent.FromContext(ctx); c != nil {
		return fn(ctx, c)
	}
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("hr: begin: %w", err)
	}
	tctx := ent.NewTxContext(ent.NewContext(ctx, tx.Client()), tx)
	if err := fn(tctx, tx.Client()); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("hr: commit: %w", err)
	}
	return nil
}

// ValidateBaseURL checks an override: an absolute https URL with a host,
// no user info, query or fragment.
func ValidateBaseURL(raw string) *UserError {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return userErr(CodeInvalidURL, "input.baseURL", "baseURL must be an absolute URL such as https://api.example.com")
	case u.Scheme != "https":
		return userErr(CodeInvalidURL, "input.baseURL", "baseURL must use https")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return userErr(CodeInvalidURL, "input.baseURL", "baseURL must not hold user info, a query or a fragment")
	case len(raw) > 500:
		return userErr(CodeInvalidURL, "input.baseURL", "baseURL must be at most 500 characters")
	}
	return nil
}

// provider builds the adapter of a connection.
func (s *Service) provider(spec Spec, baseURL string, creds map[string]string) Provider {
	return spec.New(Config{
		Credentials: creds,
		BaseURL:     spec.baseURL(baseURL, creds),
		Override:    baseURL != "",
		HTTP:        s.HTTP,
	})
}

// fetch reads every employee, bounded by FetchTimeout.
func (s *Service) fetch(ctx context.Context, p Provider, creds map[string]string) ([]Employee, error) {
	ctx, cancel := context.WithTimeout(ctx, cmpDur(s.FetchTimeout, 2*time.Minute))
	defer cancel()
	emps, err := p.Employees(ctx)
	if err != nil {
		var pe *ProviderError
		if errors.As(err, &pe) {
			pe.Message = redact(pe.Message, creds)
			return nil, pe
		}
		return nil, perr(ErrUnreachable, redact(err.Error(), creds))
	}
	return emps, nil
}

// Connect checks the credentials with a real call (reading every
// employee), then stores the connection, its sealed credentials and the
// employees in one transaction. It invites nobody.
func (s *Service) Connect(ctx context.Context, in ConnectInput) (*ent.HRConnection, error) {
	if err := rule.RequireAdmin(ctx, "manage HR connections"); err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	spec, ok := Lookup(strings.ToLower(strings.TrimSpace(in.Provider)))
	if !ok {
		names := make([]string, len(providers))
		for i, p := range providers {
			names[i] = p.Name
		}
		return nil, userErr(CodeUnknownProvider, "input.provider", "provider must be one of "+strings.Join(names, ", "))
	}
	creds := map[string]string{}
	for k, val := range in.Credentials {
		if !slices.ContainsFunc(spec.Fields, func(f Field) bool { return f.Name == k }) {
			return nil, userErr(CodeInvalidInput, "input.credentials", fmt.Sprintf("%s takes no credential %q", spec.Label, k))
		}
		if val = strings.TrimSpace(val); val != "" {
			if len(val) > 2000 || !utf8.ValidString(val) {
				return nil, userErr(CodeInvalidInput, "input.credentials", fmt.Sprintf("credential %q is too long", k))
			}
			creds[k] = val
		}
	}
	for _, f := range spec.Fields {
		if !f.Optional && creds[f.Name] == "" {
			return nil, userErr(CodeInvalidInput, "input.credentials", fmt.Sprintf("%s needs the credential %q (%s)", spec.Label, f.Name, f.Label))
		}
	}
	base := strings.TrimRight(strings.TrimSpace(in.BaseURL), "/")
	if ue := ValidateBaseURL(base); ue != nil {
		return nil, ue
	}
	if ue := in.Settings.validate(); ue != nil {
		return nil, ue
	}
	if _, err := url.Parse(spec.baseURL(base, creds)); err != nil {
		return nil, userErr(CodeInvalidURL, "input.credentials", "the credentials do not make a valid URL")
	}
	if err := s.checkRole(ctx, s.db(ctx), in.Settings.RoleID); err != nil {
		return nil, err
	}
	if n, err := s.db(ctx).HRConnection.Query().Where(hrconnection.Provider(spec.Name)).Count(ctx); err != nil {
		return nil, fmt.Errorf("hr.Connect: %w", err)
	} else if n > 0 {
		return nil, userErr(CodeAlreadyConnected, "input.provider", spec.Label+" is already connected; disconnect it first to connect another account")
	}

	emps, err := s.fetch(ctx, s.provider(spec, base, creds), creds)
	if ue := providerUserError(err, "input.credentials"); ue != nil {
		return nil, ue
	}
	if err != nil {
		return nil, err
	}
	sealed, err := seal(s.Keys, v.OrgID, spec.Name, creds)
	if err != nil {
		return nil, fmt.Errorf("hr.Connect: seal: %w", err)
	}
	now := s.now()
	var conn *ent.HRConnection
	err = s.write(ctx, func(ctx context.Context, c *ent.Client) error {
		q := c.HRConnection.Create().
			SetOrganizationID(v.OrgID).
			SetProvider(spec.Name).
			SetAPIKeyEncrypted(sealed).
			SetCredentialsHint(Hint(creds[spec.hintField()])).
			SetBaseURL(base).
			SetActorID(v.UserID).
			SetLastSyncAt(now).
			SetLastSyncStatus(hrconnection.LastSyncStatusSUCCEEDED).
			SetLastSyncEmployees(len(emps)).
			SetNillableAutoInvite(in.Settings.AutoInvite).
			SetNillableDeactivateLeavers(in.Settings.DeactivateLeavers).
			SetNillableRoleID(in.Settings.RoleID)
		if in.Settings.SyncInterval != nil && *in.Settings.SyncInterval > 0 {
			q.SetSyncIntervalSeconds(int(in.Settings.SyncInterval.Seconds())).
				SetNextSyncAt(now.Add(*in.Settings.SyncInterval))
		}
		conn, err = q.Save(ctx)
		if ent.IsConstraintError(err) {
			return userErr(CodeAlreadyConnected, "input.provider", spec.Label+" is already connected")
		}
		if err != nil {
			return fmt.Errorf("hr.Connect: %w", err)
		}
		if err := s.storeEmployees(ctx, c, conn, emps); err != nil {
			return err
		}
		return audit.Record(ctx, c, "hr.connected", "HRConnection", conn.ID,
			fmt.Sprintf("%s connected; %d employees read", spec.Label, len(emps)))
	})
	if err != nil {
		return nil, err
	}
	// Read it back outside the transaction just committed, so its edges
	// resolve with a live client.
	if conn, err = s.db(ctx).HRConnection.Get(ctx, conn.ID); err != nil {
		return nil, fmt.Errorf("hr.Connect: %w", err)
	}
	s.Log.InfoContext(ctx, "HR system connected", "connection", conn.ID, "provider", spec.Name, "employees", len(emps))
	return conn, nil
}

// checkRole resolves a role ID in the viewer's organization and applies
// the role ceiling, so a foreign or too-high role is refused before any
// write.
func (s *Service) checkRole(ctx context.Context, c *ent.Client, id *int) error {
	if id == nil {
		return nil
	}
	rl, err := c.Role.Get(ctx, *id)
	if ent.IsNotFound(err) {
		return apperr.New(apperr.NotFound, "role not found")
	}
	if err != nil {
		return err
	}
	return rule.CheckGrant(ctx, rl.Rank, rl.Admin)
}

// Update changes the autopilot settings. The admin who changes them
// becomes the one scheduled syncs act as.
func (s *Service) Update(ctx context.Context, c *ent.Client, id int, st Settings) (*ent.HRConnection, error) {
	if err := rule.RequireAdmin(ctx, "manage HR connections"); err != nil {
		return nil, err
	}
	if ue := st.validate(); ue != nil {
		return nil, ue
	}
	conn, err := c.HRConnection.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkRole(ctx, c, st.RoleID); err != nil {
		return nil, err
	}
	u := c.HRConnection.UpdateOne(conn).
		SetActorID(auth.FromContext(ctx).UserID).
		SetNillableAutoInvite(st.AutoInvite).
		SetNillableDeactivateLeavers(st.DeactivateLeavers).
		SetNillableRoleID(st.RoleID)
	if st.ClearRole {
		u.ClearRoleID()
	}
	if st.SyncInterval != nil {
		if *st.SyncInterval == 0 {
			u.SetSyncIntervalSeconds(0).ClearNextSyncAt()
		} else {
			u.SetSyncIntervalSeconds(int(st.SyncInterval.Seconds())).SetNextSyncAt(s.now().Add(*st.SyncInterval))
		}
	}
	conn, err = u.Save(ctx)
	if err != nil {
		return nil, err
	}
	return conn, audit.Record(ctx, c, "hr.updated", "HRConnection", conn.ID, settingsSummary(conn))
}

func settingsSummary(c *ent.HRConnection) string {
	interval := "off"
	if c.SyncIntervalSeconds > 0 {
		interval = (time.Duration(c.SyncIntervalSeconds) * time.Second).String()
	}
	return fmt.Sprintf("%s: autoInvite=%t syncInterval=%s deactivateLeavers=%t", c.Provider, c.AutoInvite, interval, c.DeactivateLeavers)
}

// Disconnect deletes the connection, its credentials and its employees.
// Invitations and users it created stay.
func (s *Service) Disconnect(ctx context.Context, c *ent.Client, id int) error {
	if err := rule.RequireAdmin(ctx, "manage HR connections"); err != nil {
		return err
	}
	conn, err := c.HRConnection.Get(ctx, id)
	if err != nil {
		return err
	}
	if _, err := c.HREmployee.Delete().Where(hremployee.ConnectionID(conn.ID)).Exec(ctx); err != nil {
		return fmt.Errorf("hr.Disconnect: %w", err)
	}
	if err := c.HRConnection.DeleteOne(conn).Exec(ctx); err != nil {
		return fmt.Errorf("hr.Disconnect: %w", err)
	}
	return audit.Record(ctx, c, "hr.disconnected", "HRConnection", conn.ID, conn.Provider+" disconnected; credentials deleted")
}

// snapshotBatch is how many employees go in one upsert.
const snapshotBatch = 400

// storeEmployees makes the connection's stored employees exactly emps:
// upserted by (connection, employee ID), so rows keep their IDs (and
// cursors) across syncs, and the ones no longer listed deleted.
func (s *Service) storeEmployees(ctx context.Context, c *ent.Client, conn *ent.HRConnection, emps []Employee) error {
	seen := make(map[string]bool, len(emps))
	var uniq []Employee
	for _, e := range emps {
		e.ID = clip(e.ID, 200)
		if seen[e.ID] {
			continue // a provider listing one person twice keeps the first
		}
		seen[e.ID] = true
		uniq = append(uniq, e)
	}
	now := s.now()
	for start := 0; start < len(uniq); start += snapshotBatch {
		part := uniq[start:min(start+snapshotBatch, len(uniq))]
		builders := make([]*ent.HREmployeeCreate, len(part))
		for i, e := range part {
			builders[i] = c.HREmployee.Create().
				SetOrganizationID(conn.OrganizationID).
				SetConnectionID(conn.ID).
				SetEmployeeID(e.ID).
				SetName(clipRunes(e.Name, 200)).
				SetEmail(clip(strings.TrimSpace(e.Email), 320)).
				SetPhone(clip(strings.TrimSpace(e.Phone), 50)).
				SetDepartment(clipRunes(e.Department, 200)).
				SetEmploymentStatus(hremployee.EmploymentStatus(e.Status)).
				SetNillableStartDate(e.StartDate).
				SetNillableEndDate(e.EndDate).
				SetNillableProviderUpdatedAt(e.UpdatedAt).
				SetUpdatedAt(now)
		}
		err := c.HREmployee.CreateBulk(builders...).
			OnConflictColumns(hremployee.FieldConnectionID, hremployee.FieldEmployeeID).
			UpdateNewValues().
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("hr: store employees: %w", err)
		}
	}
	rows, err := c.HREmployee.Query().
		Where(hremployee.ConnectionID(conn.ID)).
		Select(hremployee.FieldID, hremployee.FieldEmployeeID).
		All(ctx)
	if err != nil {
		return fmt.Errorf("hr: store employees: %w", err)
	}
	var gone []int
	for _, r := range rows {
		if !seen[r.EmployeeID] {
			gone = append(gone, r.ID)
		}
	}
	for start := 0; start < len(gone); start += 1000 {
		if _, err := c.HREmployee.Delete().Where(hremployee.IDIn(gone[start:min(start+1000, len(gone))]...)).Exec(ctx); err != nil {
			return fmt.Errorf("hr: store employees: %w", err)
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func clipRunes(s string, n int) string {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// credentials opens a connection's sealed credentials.
func (s *Service) credentials(conn *ent.HRConnection) (map[string]string, error) {
	return open(s.Keys, conn.OrganizationID, conn.Provider, conn.APIKeyEncrypted)
}

// sortEmployees orders the list as hrEmployees shows it.
func sortEmployees(rows []*ent.HREmployee) {
	slices.SortFunc(rows, func(a, b *ent.HREmployee) int {
		return cmp.Or(strings.Compare(SortKey(a), SortKey(b)), cmp.Compare(a.ID, b.ID))
	})
}

// SortKey is the key hrEmployees orders by and its cursors hold.
func SortKey(e *ent.HREmployee) string {
	return strings.ToLower(e.Name) + "\x00" + e.EmployeeID
}
