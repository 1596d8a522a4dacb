package graph

import (
	"context"
	"errors"
	"strings"
	"time"

	"entgo.io/contrib/entgql"

	"admit/ent"
	"admit/ent/hrconnection"
	"admit/internal/apperr"
	"admit/internal/hr"
	"admit/internal/invite"
)

// errNoHR answers HR fields on a server built without the HR service.
var errNoHR = apperr.New(apperr.Internal, "HR connections are not available on this server")

// hrUserError maps an HR refusal to a payload error.
func hrUserError(err error) (*UserError, bool) {
	var ue *hr.UserError
	if errors.As(err, &ue) {
		return userErrors(ErrorCode(ue.Code), ue.Field, ue.Message)[0], true
	}
	return userErrorFrom(err)
}

// hrSettings reads the autopilot settings of an input.
func hrSettings(autoInvite *bool, roleID *int, clearRole *bool, interval *string, deactivate *bool) (hr.Settings, *UserError) {
	st := hr.Settings{AutoInvite: autoInvite, RoleID: roleID, DeactivateLeavers: deactivate, ClearRole: clearRole != nil && *clearRole}
	if interval != nil {
		d, ue := hr.ParseInterval(*interval)
		if ue != nil {
			return st, userErrors(ErrorCode(ue.Code), ue.Field, ue.Message)[0]
		}
		st.SyncInterval = &d
	}
	return st, nil
}

// hrEmployeePage pages a status-filtered employee list by its sort key.
func hrEmployeePage(views []hr.View, first *int, after *entgql.Cursor[int], maxPage int) *HREmployeeConnection {
	start := 0
	if after != nil {
		key, _ := after.Value.(string)
		for start < len(views) && (hr.SortKey(views[start].HREmployee) < key ||
			(hr.SortKey(views[start].HREmployee) == key && views[start].ID <= after.ID)) {
			start++
		}
	}
	n := maxPage
	if first != nil && *first >= 0 {
		n = min(*first, maxPage)
	}
	end := min(start+n, len(views))
	conn := &HREmployeeConnection{Edges: []*HREmployeeEdge{}, TotalCount: len(views), PageInfo: &entgql.PageInfo[int]{
		HasNextPage:     end < len(views),
		HasPreviousPage: start > 0,
	}}
	for i := start; i < end; i++ {
		v := &views[i]
		conn.Edges = append(conn.Edges, &HREmployeeEdge{Node: v, Cursor: entgql.Cursor[int]{ID: v.ID, Value: hr.SortKey(v.HREmployee)}})
	}
	if len(conn.Edges) > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	}
	return conn
}

// hrInviteResults turns the pipeline's per-employee results into the
// payload's, with the invitations loaded in batches.
func (r *Resolver) hrInviteResults(ctx context.Context, c *ent.Client, results []hr.EmployeeResult, out *invite.Outcome) ([]*HRInviteResult, *InviteCounts, error) {
	common, counts, err := r.results(ctx, c, out, false)
	if err != nil {
		return nil, nil, err
	}
	list := make([]*HRInviteResult, len(results))
	for i, res := range results {
		ir := common[i]
		list[i] = &HRInviteResult{
			EmployeeID: res.EmployeeID, Name: res.Name, Input: ir.Input, Email: ir.Email,
			Outcome: ir.Outcome, Code: ir.Code, Message: ir.Message, Invitation: ir.Invitation,
		}
	}
	return list, counts, nil
}

// hrSyncResult turns a sync's result into the payload's.
func hrSyncResult(res *hr.SyncResult) *HRSyncResult {
	out := &HRSyncResult{Status: hrconnection.LastSyncStatusFAILED, Employees: res.Employees, Invited: res.Invited,
		Deactivated: res.Deactivated, Problems: append([]string{}, res.Problems...)}
	if res.Succeeded {
		out.Status = hrconnection.LastSyncStatusSUCCEEDED
	}
	return out
}

// hrInterval shows a sync interval as a duration ("24h0m0s" → "24h").
func hrInterval(seconds int) *string {
	if seconds <= 0 {
		return nil
	}
	s := (time.Duration(seconds) * time.Second).String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	return &s
}
