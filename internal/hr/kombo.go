package hr

import (
	"context"
	"net/http"
	"net/url"
)

// komboHRIS reads Kombo's unified HRIS API: an API key as a bearer token
// plus the X-Integration-Id of the customer's integration;
// GET /v1/hris/employees, cursor-paged by data.next (page_size at most 250).
var komboHRIS = Spec{
	Name:  "kombo",
	Label: "Kombo (unified HRIS)",
	Fields: []Field{
		{Name: "apiKey", Label: "API key", Secret: true},
		{Name: "integrationID", Label: "Integration ID (X-Integration-Id)"},
	},
	DefaultBaseURL: "https://api.kombo.dev",
	New:            func(c Config) Provider { return &komboAPI{c} },
}

type komboAPI struct{ Config }

func (k *komboAPI) Employees(ctx context.Context) ([]Employee, error) {
	var out []Employee
	cursor := ""
	for page := 0; page < maxPages; page++ {
		q := url.Values{"page_size": {"250"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u := k.BaseURL + "/v1/hris/employees?" + q.Encode()
		var p struct {
			Status string `json:"status"`
			Data   struct {
				Next    *string           `json:"next"`
				Results []unifiedEmployee `json:"results"`
			} `json:"data"`
		}
		err := getJSON(ctx, k.HTTP, "Kombo", "list employees", &p, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+k.Credentials["apiKey"])
				req.Header.Set("X-Integration-Id", k.Credentials["integrationID"])
			}
			return req, err
		})
		if err != nil {
			return nil, err
		}
		if p.Status != "success" {
			return nil, perr(ErrBadResponse, "Kombo answered without success")
		}
		for _, r := range p.Data.Results {
			if r.ID != "" {
				out = append(out, r.normalize())
			}
		}
		if p.Data.Next == nil || *p.Data.Next == "" {
			return out, nil
		}
		cursor = *p.Data.Next
	}
	return nil, perr(ErrBadResponse, "Kombo kept returning more pages")
}
