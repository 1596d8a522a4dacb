package hr

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// hiBob reads HiBob (Bob): a service user's ID and token as Basic auth, and
// POST /v1/people/search, which returns the whole result set in one answer
// (Bob does not page it), with showInactive so that leavers are seen.
var hiBob = Spec{
	Name:  "hibob",
	Label: "HiBob",
	Fields: []Field{
		{Name: "serviceUserID", Label: "Service user ID"},
		{Name: "token", Label: "Service user token", Secret: true},
	},
	DefaultBaseURL: "https://api.hibob.com",
	New:            func(c Config) Provider { return &hiBobAPI{c} },
}

type hiBobAPI struct{ Config }

// hiBobFields are the field paths asked for; Bob omits fields the service
// user may not read, so every one is optional.
var hiBobFields = []string{
	"root.id", "root.firstName", "root.surname", "root.displayName", "root.email",
	"work.department", "work.startDate", "work.mobilePhone", "internal.status",
	"internal.terminationDate", "internal.lifecycleStatus", "about.updated",
}

type hiBobPerson struct {
	ID          string `json:"id"`
	FirstName   string `json:"firstName"`
	Surname     string `json:"surname"`
	DisplayName string `json:"displayName"`
	Email       string `json:"email"`
	Work        struct {
		Department  string `json:"department"`
		StartDate   string `json:"startDate"`
		MobilePhone string `json:"mobilePhone"`
	} `json:"work"`
	Internal struct {
		Status          string `json:"status"`
		TerminationDate string `json:"terminationDate"`
		LifecycleStatus string `json:"lifecycleStatus"`
	} `json:"internal"`
}

func (h *hiBobAPI) Employees(ctx context.Context) ([]Employee, error) {
	body, _ := json.Marshal(map[string]any{
		"fields":        hiBobFields,
		"showInactive":  true,
		"humanReadable": "REPLACE",
	})
	var resp struct {
		Employees []hiBobPerson `json:"employees"`
	}
	err := getJSON(ctx, h.HTTP, "HiBob", "search people", &resp, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.BaseURL+"/v1/people/search", bytes.NewReader(body))
		if err == nil {
			req.SetBasicAuth(h.Credentials["serviceUserID"], h.Credentials["token"])
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Employee, 0, len(resp.Employees))
	for _, p := range resp.Employees {
		if strings.TrimSpace(p.ID) == "" {
			continue
		}
		e := Employee{
			ID:         strings.TrimSpace(p.ID),
			Name:       firstNonEmpty(p.DisplayName, joinName(p.FirstName, p.Surname)),
			Email:      p.Email,
			Phone:      p.Work.MobilePhone,
			Department: p.Work.Department,
			StartDate:  parseDate(p.Work.StartDate),
			EndDate:    parseDate(p.Internal.TerminationDate),
			Status:     Active,
		}
		switch strings.ToLower(p.Internal.LifecycleStatus) {
		case "hired":
			e.Status = Pending
		case "terminated", "garden leave":
			e.Status = Inactive
		case "leave":
			e.Status = Leave
		}
		if strings.EqualFold(p.Internal.Status, "inactive") && e.Status != Pending {
			e.Status = Inactive
		}
		out = append(out, e)
	}
	return out, nil
}
