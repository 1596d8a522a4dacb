package hr

import (
	"context"
	"fmt"

	"admit/ent"
	"admit/ent/invitation"
	"admit/internal/audit"
	"admit/internal/invite"
	"admit/internal/rule"
)

// InviteRequest picks employees of a connection to invite.
type InviteRequest struct {
	ConnectionID int
	EmployeeIDs  []string
	All          bool
	RoleID       *int
	Message      string
}

// EmployeeResult is the pipeline's result for one employee.
type EmployeeResult struct {
	EmployeeID string
	Name       string
	invite.Result
}

// Invite sends invitations through the pipeline (source HR) to the chosen
// employees, or to every employee who is NEW with All. Only NEW employees
// are invited: members, the already invited, leavers, and employees with
// no usable or an outside-domain address get a SKIPPED result with a
// reason, so running it again invites only those not yet invited.
func (s *Service) Invite(ctx context.Context, c *ent.Client, req InviteRequest) ([]EmployeeResult, *invite.Outcome, error) {
	if err := rule.RequireAdmin(ctx, "invite people"); err != nil {
		return nil, nil, err
	}
	switch {
	case req.All && len(req.EmployeeIDs) > 0:
		return nil, nil, userErr(CodeInvalidInput, "input.employeeIDs", "give employeeIDs or all: true, not both")
	case !req.All && len(req.EmployeeIDs) == 0:
		return nil, nil, userErr(CodeInvalidInput, "input.employeeIDs", "give at least one employee ID, or all: true")
	}
	conn, err := c.HRConnection.Get(ctx, req.ConnectionID)
	if err != nil {
		return nil, nil, err
	}
	views, err := s.views(ctx, c, conn)
	if err != nil {
		return nil, nil, err
	}
	var picked []*View
	var missing []string
	if req.All {
		for i := range views {
			picked = append(picked, &views[i])
		}
	} else {
		byID := make(map[string]*View, len(views))
		for i := range views {
			byID[views[i].EmployeeID] = &views[i]
		}
		seen := map[string]bool{}
		for _, id := range req.EmployeeIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			if v := byID[id]; v != nil {
				picked = append(picked, v)
			} else {
				missing = append(missing, id)
			}
		}
	}
	results, out, err := s.invite(ctx, c, picked, req.RoleID, req.Message)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range missing {
		r := EmployeeResult{EmployeeID: id, Result: invite.Result{Input: id, Code: CodeNotFound,
			Message: "no employee " + id + " in the last sync of this connection"}}
		results = append(results, r)
		out.Results = append(out.Results, r.Result)
	}
	if n := out.Count(""); n > 0 {
		if err := audit.Record(ctx, c, "hr.invited", "HRConnection", conn.ID, fmt.Sprintf("%d employees invited from %s", n, conn.Provider)); err != nil {
			return nil, nil, err
		}
	}
	return results, out, nil
}

// invite runs the pipeline for the NEW employees among picked and gives
// every picked employee a result, in order.
func (s *Service) invite(ctx context.Context, c *ent.Client, picked []*View, roleID *int, message string) ([]EmployeeResult, *invite.Outcome, error) {
	var entries []invite.Entry
	for _, v := range picked {
		if v.Status == StatusNew {
			entries = append(entries, invite.Entry{Input: v.Address, Name: v.Name, ExternalID: v.EmployeeID})
		}
	}
	// Always through the pipeline, even with nothing new: it checks the
	// role exactly as an invitation would.
	piped, err := s.Invites.Invite(ctx, c, invite.Request{Entries: entries, RoleID: roleID, Message: message, Source: invitation.SourceHR})
	if err != nil {
		return nil, nil, err
	}
	out := &invite.Outcome{}
	results := make([]EmployeeResult, 0, len(picked))
	k := 0
	for _, v := range picked {
		r := invite.Result{Input: v.Email, Email: v.Address}
		switch v.Status {
		case StatusNew:
			r = piped.Results[k]
			k++
		case StatusMember:
			r.Code, r.Message = invite.CodeAlreadyMember, v.Name+" already has an account in this organization"
		case StatusInvited:
			r.Code, r.Message = invite.CodeAlreadyInvited, v.Address+" already has a pending invitation"
		case StatusNoEmail:
			r.Code, r.Message = invite.CodeInvalidAddress, "the HR system has no usable work email for "+v.Name
		case StatusOutsideDomain:
			r.Code, r.Message = invite.CodeDomainNotAllowed, domainOf(v.Address)+" is not one of the organization's domains"
		case StatusInactive:
			r.Code, r.Message = CodeInactive, v.Name+" has left or has not started yet"
		}
		if r.Input == "" {
			r.Input = v.EmployeeID
		}
		results = append(results, EmployeeResult{EmployeeID: v.EmployeeID, Name: v.Name, Result: r})
		out.Results = append(out.Results, r)
	}
	return results, out, nil
}
