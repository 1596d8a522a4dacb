package hr

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"admit/ent"
	"admit/ent/hremployee"
	"admit/ent/invitation"
	"admit/ent/user"
	"admit/internal/address"
)

// Status is where an employee stands with the organization.
type Status string

// Employee statuses, in the order they are decided.
const (
	StatusInactive      Status = "INACTIVE"       // left, or not started yet
	StatusMember        Status = "MEMBER"         // has an account (active or deactivated)
	StatusInvited       Status = "INVITED"        // has a pending invitation
	StatusNoEmail       Status = "NO_EMAIL"       // no usable work email
	StatusOutsideDomain Status = "OUTSIDE_DOMAIN" // email outside the organization's domains
	StatusNew           Status = "NEW"            // may be invited
)

// View is a stored employee with its status.
type View struct {
	*ent.HREmployee
	Status Status
	// Address is the normalized work email, "" when unusable.
	Address    string
	User       *ent.User       // the member, when there is one
	Invitation *ent.Invitation // the pending invitation, when there is one
	// Left is set for an employee whose employment ended.
	Left bool
}

// notStarted and left read an employee's dates at now.
func notStarted(e *ent.HREmployee, now time.Time) bool {
	return e.EmploymentStatus == hremployee.EmploymentStatusPENDING || (e.StartDate != nil && e.StartDate.After(now))
}

func left(e *ent.HREmployee, now time.Time) bool {
	if notStarted(e, now) {
		return false
	}
	return e.EmploymentStatus == hremployee.EmploymentStatusINACTIVE || (e.EndDate != nil && !e.EndDate.After(now))
}

// views gives every stored employee of a connection its status, in
// hrEmployees order. Members are matched by address or by the employee ID
// kept as their external ID; invitations by address.
func (s *Service) views(ctx context.Context, c *ent.Client, conn *ent.HRConnection) ([]View, error) {
	rows, err := c.HREmployee.Query().Where(hremployee.ConnectionID(conn.ID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("hr: employees: %w", err)
	}
	sortEmployees(rows)
	org, err := c.Organization.Get(ctx, conn.OrganizationID)
	if err != nil {
		return nil, fmt.Errorf("hr: organization: %w", err)
	}
	now := s.now()
	out := make([]View, len(rows))
	var emails, ids []string
	for i, r := range rows {
		out[i] = View{HREmployee: r, Left: left(r, now)}
		if r.Email != "" {
			if email, _, err := address.Parse(r.Email); err == nil {
				out[i].Address = email
				emails = append(emails, email)
			}
		}
		ids = append(ids, r.EmployeeID)
	}
	byEmail := map[string]*ent.User{}
	byExternal := map[string]*ent.User{}
	pending := map[string]*ent.Invitation{}
	for start := 0; start < max(len(emails), len(ids)); start += 500 {
		es := emails[min(start, len(emails)):min(start+500, len(emails))]
		xs := ids[min(start, len(ids)):min(start+500, len(ids))]
		users, err := c.User.Query().
			Where(user.Or(user.EmailIn(es...), user.ExternalIDIn(xs...))).
			All(ctx)
		if err != nil {
			return nil, fmt.Errorf("hr: members: %w", err)
		}
		for _, u := range users {
			if u.Email != nil {
				byEmail[*u.Email] = u
			}
			if u.ExternalID != nil {
				byExternal[*u.ExternalID] = u
			}
		}
		if len(es) == 0 {
			continue
		}
		invs, err := c.Invitation.Query().
			Where(invitation.EmailIn(es...), invitation.StatusEQ(invitation.StatusPENDING), invitation.ExpiresAtGT(now)).
			All(ctx)
		if err != nil {
			return nil, fmt.Errorf("hr: invitations: %w", err)
		}
		for _, inv := range invs {
			pending[*inv.Email] = inv
		}
	}
	for i := range out {
		v := &out[i]
		u := byExternal[v.EmployeeID]
		if u == nil && v.Address != "" {
			u = byEmail[v.Address]
		}
		if u != nil && u.Status != user.StatusINVITED {
			v.User = u
		}
		if v.Address != "" {
			v.Invitation = pending[v.Address]
		}
		switch {
		case v.Left || notStarted(v.HREmployee, now):
			v.Status = StatusInactive
		case v.User != nil:
			v.Status = StatusMember
		case v.Invitation != nil:
			v.Status = StatusInvited
		case v.Address == "":
			v.Status = StatusNoEmail
		case len(org.Domains) > 0 && !slices.Contains(org.Domains, domainOf(v.Address)):
			v.Status = StatusOutsideDomain
		default:
			v.Status = StatusNew
		}
	}
	return out, nil
}

func domainOf(email string) string { return email[strings.LastIndexByte(email, '@')+1:] }

// Employees lists a connection's employees with their statuses, in
// name order, keeping those whose status is in statuses (all when empty).
func (s *Service) Employees(ctx context.Context, connectionID int, statuses []Status) ([]View, error) {
	c := s.db(ctx)
	conn, err := c.HRConnection.Get(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	all, err := s.views(ctx, c, conn)
	if err != nil {
		return nil, err
	}
	if len(statuses) == 0 {
		return all, nil
	}
	return slices.DeleteFunc(all, func(v View) bool { return !slices.Contains(statuses, v.Status) }), nil
}
