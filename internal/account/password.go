package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"admit/ent"
	"admit/ent/delivery"
	"admit/ent/organization"
	"admit/ent/passwordreset"
	"admit/ent/session"
	"admit/ent/user"
	"admit/internal/auth"
	"admit/internal/password"
	"admit/internal/rule"
	"admit/internal/secret"
	"admit/internal/throttle"
	"admit/internal/txn"
)

// TemplatePasswordReset names the outbox message carrying a reset link.
const TemplatePasswordReset = "password_reset"

// ResetTTL is how long a password reset link works.
const ResetTTL = time.Hour

// Limits of requestPasswordReset, per address and per client address.
const (
	ResetLimitPerAccount = 3
	ResetLimitPerAddress = 20
	ResetLimitWindow     = time.Hour
)

// Refusals of the password functions.
var (
	ErrResetTokenInvalid = errors.New("this password reset link is not valid: it was used already, replaced by a newer one, or copied incompletely")
	ErrResetTokenExpired = errors.New("this password reset link has expired; ask for a new one")
	ErrWrongPassword     = errors.New("the current password is incorrect")
)

// RequestPasswordReset queues a reset email for every active account with
// email, written with c (the mutation's transaction: the messages go out
// only if it commits). Unknown addresses get the same answer and the same
// count. wait is non-zero when a limit refused the request; the counts are
// kept in c too, so a refused request, rolled back, adds nothing.
func (s *Service) RequestPasswordReset(ctx context.Context, c *ent.Client, email, ip string) (wait time.Duration, err error) {
	email = NormalizeEmail(email)
	for _, l := range []struct {
		key   string
		limit int
	}{
		{"reset:address:" + throttle.Address(ip), ResetLimitPerAddress},
		{"reset:account:" + throttle.Secret(email), ResetLimitPerAccount},
	} {
		ok, wait, err := s.throttle().Hit(ctx, c, l.key, l.limit, ResetLimitWindow)
		if err != nil {
			return 0, fmt.Errorf("account.RequestPasswordReset: %w", err)
		}
		if !ok {
			return wait, nil
		}
	}
	sys := rule.System(ctx)
	users, err := c.User.Query().Where(user.Email(email), user.StatusEQ(user.StatusACTIVE)).All(sys)
	if err != nil {
		return 0, fmt.Errorf("account.RequestPasswordReset: %w", err)
	}
	now := s.Now()
	for _, u := range users {
		// A new link replaces the ones before it.
		if err := c.PasswordReset.Update().
			Where(passwordreset.UserID(u.ID), passwordreset.UsedAtIsNil()).
			SetUsedAt(now).Exec(sys); err != nil {
			return 0, fmt.Errorf("account.RequestPasswordReset: %w", err)
		}
		r, err := c.PasswordReset.Create().
			SetUserID(u.ID).
			SetNonce(secret.NewNonce()).
			SetExpiresAt(now.Add(ResetTTL)).
			Save(sys)
		if err != nil {
			return 0, fmt.Errorf("account.RequestPasswordReset: %w", err)
		}
		if err := c.Delivery.Create().
			SetOrganizationID(u.OrganizationID).
			SetChannel(delivery.ChannelEMAIL).
			SetRecipient(email).
			SetTemplate(TemplatePasswordReset).
			SetPasswordResetID(r.ID).
			SetNextAttemptAt(now).
			Exec(sys); err != nil {
			return 0, fmt.Errorf("account.RequestPasswordReset: %w", err)
		}
	}
	if len(users) > 0 && s.Kick != nil {
		txn.AfterCommit(ctx, s.Kick)
	}
	return 0, nil
}

// ResetToken returns the link token of a reset, or false when the reset
// can no longer be used (the outbox then drops its message).
func (s *Service) ResetToken(r *ent.PasswordReset) (string, bool) {
	if r.UsedAt != nil || !r.ExpiresAt.After(s.Now()) {
		return "", false
	}
	return s.Keys.Derive(secret.PasswordReset, r.ID, 1, r.Nonce), true
}

// ResetPassword sets a new password with a reset token, once, and ends
// every session of the account.
func (s *Service) ResetPassword(ctx context.Context, c *ent.Client, token, pw string) error {
	if err := password.Check(pw); err != nil {
		return err
	}
	id, gen, ok := secret.ParseDerived(secret.PasswordReset, token)
	if !ok || gen != 1 {
		return ErrResetTokenInvalid
	}
	sys := rule.System(ctx)
	r, err := c.PasswordReset.Get(sys, id)
	switch {
	case ent.IsNotFound(err):
		return ErrResetTokenInvalid
	case err != nil:
		return fmt.Errorf("account.ResetPassword: %w", err)
	case !s.Keys.VerifyDerived(secret.PasswordReset, token, r.ID, 1, r.Nonce) || r.UsedAt != nil:
		return ErrResetTokenInvalid
	case !r.ExpiresAt.After(s.Now()):
		return ErrResetTokenExpired
	}
	// Used once: of two concurrent resets with one token, one wins.
	n, err := c.PasswordReset.Update().
		Where(passwordreset.ID(r.ID), passwordreset.UsedAtIsNil()).
		SetUsedAt(s.Now()).Save(sys)
	if err != nil {
		return fmt.Errorf("account.ResetPassword: %w", err)
	}
	if n != 1 {
		return ErrResetTokenInvalid
	}
	u, err := c.User.Get(sys, r.UserID)
	if err != nil {
		return fmt.Errorf("account.ResetPassword: %w", err)
	}
	if u.Status != user.StatusACTIVE {
		return ErrResetTokenInvalid
	}
	return s.SetPassword(ctx, c, u.ID, pw, 0)
}

// ChangePassword replaces the viewer's password after checking the current
// one, and ends their other sessions.
func (s *Service) ChangePassword(ctx context.Context, c *ent.Client, v *auth.Viewer, current, next string) error {
	if err := password.Check(next); err != nil {
		return err
	}
	u, err := c.User.Get(rule.System(ctx), v.UserID)
	if err != nil {
		return fmt.Errorf("account.ChangePassword: %w", err)
	}
	ok, err := password.Verify(ctx, u.PasswordHash, current)
	if err != nil {
		return fmt.Errorf("account.ChangePassword: %w", err)
	}
	if !ok {
		return ErrWrongPassword
	}
	return s.SetPassword(ctx, c, u.ID, next, v.SessionID)
}

// SetPassword sets a user's password and ends all their sessions but keep
// (0: all of them). Operators use it too (reset-password).
func (s *Service) SetPassword(ctx context.Context, c *ent.Client, userID int, pw string, keep int) error {
	if err := password.Check(pw); err != nil {
		return err
	}
	hash, err := password.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("account.SetPassword: %w", err)
	}
	sys := rule.System(ctx)
	u, err := c.User.UpdateOneID(userID).SetPasswordHash(hash).Save(sys)
	if err != nil {
		return fmt.Errorf("account.SetPassword: %w", err)
	}
	del := c.Session.Delete().Where(session.UserID(userID))
	if keep != 0 {
		del = del.Where(session.IDNEQ(keep))
	}
	if _, err := del.Exec(sys); err != nil {
		return fmt.Errorf("account.SetPassword: %w", err)
	}
	s.sessionsEnded(ctx, u.OrganizationID, userID)
	return nil
}

// SignOutEverywhere ends every session of the viewer and reports how many.
func (s *Service) SignOutEverywhere(ctx context.Context, c *ent.Client, v *auth.Viewer) (int, error) {
	n, err := c.Session.Delete().Where(session.UserID(v.UserID)).Exec(rule.System(ctx))
	if err != nil {
		return 0, fmt.Errorf("account.SignOutEverywhere: %w", err)
	}
	s.sessionsEnded(ctx, v.OrgID, v.UserID)
	return n, nil
}

// Refusals of the operator commands.
var (
	ErrNoSuchAccount   = errors.New("no active account has this email address")
	ErrSeveralAccounts = errors.New("this address has accounts in several organizations; choose one with --organization-id")
)

// OperatorResetPassword sets the password of the active account with email
// (in orgID, when given) for an operator, outside any viewer, and ends all
// its sessions.
func (s *Service) OperatorResetPassword(ctx context.Context, c *ent.Client, login Login, pw string) (*ent.User, error) {
	email, number, err := login.Normalize(ctx, c)
	if err != nil {
		return nil, err
	}
	who := user.Email(email)
	if number != "" {
		who = user.Phone(number)
	}
	q := c.User.Query().Where(who, user.StatusEQ(user.StatusACTIVE))
	if login.OrgID != nil {
		q = q.Where(user.OrganizationID(*login.OrgID))
	}
	users, err := q.All(rule.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("account.OperatorResetPassword: %w", err)
	}
	switch len(users) {
	case 0:
		return nil, ErrNoSuchAccount
	case 1:
	default:
		return nil, ErrSeveralAccounts
	}
	if err := s.SetPassword(ctx, c, users[0].ID, pw, 0); err != nil {
		return nil, err
	}
	return users[0], nil
}

// OrganizationNameExists reports whether an organization has name (in any
// case, spaces trimmed).
func OrganizationNameExists(ctx context.Context, c *ent.Client, name string) (bool, error) {
	ok, err := c.Organization.Query().Where(organization.NameEqualFold(strings.TrimSpace(name))).Exist(rule.System(ctx))
	if err != nil {
		return false, fmt.Errorf("account.OrganizationNameExists: %w", err)
	}
	return ok, nil
}
