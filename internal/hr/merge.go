package hr

import (
	"context"
	"net/http"
	"net/url"
)

// mergeHRIS reads Merge's unified HRIS API: the organization's production
// API key as a bearer token, plus the linked account's X-Account-Token;
// GET /api/hris/v1/employees, cursor-paged by `next`. Regional hosts
// (api-eu.merge.dev, api-ap.merge.dev) go in the base-URL override.
var mergeHRIS = Spec{
	Name:  "merge",
	Label: "Merge (unified HRIS)",
	Fields: []Field{
		{Name: "apiKey", Label: "Production API key", Secret: true},
		{Name: "accountToken", Label: "Linked account token (X-Account-Token)", Secret: true},
	},
	DefaultBaseURL: "https://api.merge.dev",
	New:            func(c Config) Provider { return &mergeAPI{c} },
}

type mergeAPI struct{ Config }

func (m *mergeAPI) Employees(ctx context.Context) ([]Employee, error) {
	var out []Employee
	cursor := ""
	for page := 0; page < maxPages; page++ {
		q := url.Values{"page_size": {"100"}, "expand": {"groups"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u := m.BaseURL + "/api/hris/v1/employees?" + q.Encode()
		var p struct {
			Next    *string           `json:"next"`
			Results []unifiedEmployee `json:"results"`
		}
		err := getJSON(ctx, m.HTTP, "Merge", "list employees", &p, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+m.Credentials["apiKey"])
				req.Header.Set("X-Account-Token", m.Credentials["accountToken"])
			}
			return req, err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range p.Results {
			if r.ID != "" && !r.RemoteWasDeleted {
				out = append(out, r.normalize())
			}
		}
		if p.Next == nil || *p.Next == "" {
			return out, nil
		}
		cursor = *p.Next
	}
	return nil, perr(ErrBadResponse, "Merge kept returning more pages")
}
