package hr

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// bambooHR reads BambooHR: the company's subdomain and an API key sent as
// the Basic-auth user (password "x"). It lists employees with the paged
// GET /api/v1/employees (cursor in meta.page.nextCursor, page[after]) and,
// on accounts where that endpoint is absent (404), falls back to the
// employee directory, GET /api/gateway.php/{company}/v1/employees/directory,
// which lists active employees only.
var bambooHR = Spec{
	Name:  "bamboohr",
	Label: "BambooHR",
	Fields: []Field{
		{Name: "companyDomain", Label: "Company subdomain (the acme in acme.bamboohr.com)"},
		{Name: "apiKey", Label: "API key", Secret: true},
	},
	DefaultBaseURL: "https://{companyDomain}.bamboohr.com",
	New:            func(c Config) Provider { return &bamboo{c} },
}

type bamboo struct{ Config }

// bambooPageSize is the page the paged endpoint is asked for.
const bambooPageSize = 500

func (b *bamboo) request(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(b.Credentials["apiKey"], "x")
	return req, nil
}

func (b *bamboo) Employees(ctx context.Context) ([]Employee, error) {
	out, err := b.paged(ctx)
	var pe *ProviderError
	if errors.As(err, &pe) && pe.Status == http.StatusNotFound {
		return b.directory(ctx)
	}
	return out, err
}

type bambooPage struct {
	Data []struct {
		EmployeeID      any    `json:"employeeId"`
		FirstName       string `json:"firstName"`
		LastName        string `json:"lastName"`
		PreferredName   string `json:"preferredName"`
		WorkEmail       string `json:"workEmail"`
		MobilePhone     string `json:"mobilePhone"`
		WorkPhone       string `json:"workPhone"`
		DepartmentName  string `json:"departmentName"`
		Status          string `json:"status"`
		HireDate        string `json:"hireDate"`
		TerminationDate string `json:"terminationDate"`
		LastChanged     string `json:"lastChanged"`
	} `json:"data"`
	Meta struct {
		Page struct {
			NextCursor *string `json:"nextCursor"`
		} `json:"page"`
	} `json:"meta"`
}

func (b *bamboo) paged(ctx context.Context) ([]Employee, error) {
	var out []Employee
	cursor := ""
	for page := 0; page < maxPages; page++ {
		q := url.Values{}
		q.Set("page[limit]", itoa(bambooPageSize))
		q.Set("fields", "workEmail,mobilePhone,workPhone,departmentName,hireDate,terminationDate,lastChanged")
		if cursor != "" {
			q.Set("page[after]", cursor)
		}
		var p bambooPage
		u := b.BaseURL + "/api/v1/employees?" + q.Encode()
		if err := getJSON(ctx, b.HTTP, "BambooHR", "list employees", &p, func(ctx context.Context) (*http.Request, error) { return b.request(ctx, u) }); err != nil {
			return nil, err
		}
		for _, e := range p.Data {
			id := idString(e.EmployeeID)
			if id == "" {
				continue
			}
			status := Active
			if strings.EqualFold(e.Status, "inactive") || strings.EqualFold(e.Status, "terminated") {
				status = Inactive
			}
			out = append(out, Employee{
				ID:         id,
				Name:       joinName(firstNonEmpty(e.PreferredName, e.FirstName), e.LastName),
				Email:      e.WorkEmail,
				Phone:      firstNonEmpty(e.MobilePhone, e.WorkPhone),
				Department: e.DepartmentName,
				Status:     status,
				StartDate:  parseDate(e.HireDate),
				EndDate:    parseDate(e.TerminationDate),
				UpdatedAt:  parseDate(e.LastChanged),
			})
		}
		if p.Meta.Page.NextCursor == nil || *p.Meta.Page.NextCursor == "" {
			return out, nil
		}
		cursor = *p.Meta.Page.NextCursor
	}
	return nil, perr(ErrBadResponse, "BambooHR kept returning more pages")
}

type bambooDirectory struct {
	Employees []struct {
		ID          any    `json:"id"`
		DisplayName string `json:"displayName"`
		FirstName   string `json:"firstName"`
		LastName    string `json:"lastName"`
		WorkEmail   string `json:"workEmail"`
		MobilePhone string `json:"mobilePhone"`
		WorkPhone   string `json:"workPhone"`
		Department  string `json:"department"`
	} `json:"employees"`
}

func (b *bamboo) directory(ctx context.Context) ([]Employee, error) {
	base := b.BaseURL
	if !b.Override {
		base = "https://api.bamboohr.com"
	}
	u := base + "/api/gateway.php/" + url.PathEscape(b.Credentials["companyDomain"]) + "/v1/employees/directory"
	var d bambooDirectory
	if err := getJSON(ctx, b.HTTP, "BambooHR", "employee directory", &d, func(ctx context.Context) (*http.Request, error) { return b.request(ctx, u) }); err != nil {
		return nil, err
	}
	out := make([]Employee, 0, len(d.Employees))
	for _, e := range d.Employees {
		id := idString(e.ID)
		if id == "" {
			continue
		}
		out = append(out, Employee{
			ID:         id,
			Name:       firstNonEmpty(e.DisplayName, joinName(e.FirstName, e.LastName)),
			Email:      e.WorkEmail,
			Phone:      firstNonEmpty(e.MobilePhone, e.WorkPhone),
			Department: e.Department,
			Status:     Active, // the directory lists active employees only
		})
	}
	return out, nil
}
