package hr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// personio reads Personio: the API client's ID and secret are exchanged at
// POST /v2/auth/token (OAuth 2 client credentials; v1's POST /v1/auth where
// that is missing) for a bearer token, cached until shortly before its
// expires_in; employees come from
// GET /v1/company/employees, paged with offset and limit (at most 100 a
// page, as Personio enforces).
var personio = Spec{
	Name:  "personio",
	Label: "Personio",
	Fields: []Field{
		{Name: "clientID", Label: "Client ID"},
		{Name: "clientSecret", Label: "Client secret", Secret: true},
	},
	DefaultBaseURL: "https://api.personio.de",
	New:            func(c Config) Provider { return &personioAPI{c} },
}

type personioAPI struct{ Config }

// personioPageSize is Personio's largest page.
const personioPageSize = 100

// personioTokens caches tokens per (base URL, client ID, secret) for this
// process, so a sync every hour does not authenticate every hour.
var personioTokens = struct {
	sync.Mutex
	m map[string]cachedToken
}{m: map[string]cachedToken{}}

type cachedToken struct {
	token   string
	expires time.Time
}

func (p *personioAPI) cacheKey() string {
	sum := sha256.Sum256([]byte(p.BaseURL + "\x00" + p.Credentials["clientID"] + "\x00" + p.Credentials["clientSecret"]))
	return hex.EncodeToString(sum[:])
}

// token returns a cached token or fetches a new one.
func (p *personioAPI) token(ctx context.Context, fresh bool) (string, error) {
	key := p.cacheKey()
	personioTokens.Lock()
	t, ok := personioTokens.m[key]
	personioTokens.Unlock()
	if ok && !fresh && time.Now().Before(t.expires) {
		return t.token, nil
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {p.Credentials["clientID"]},
		"client_secret": {p.Credentials["clientSecret"]},
	}.Encode()
	err := getJSON(ctx, p.HTTP, "Personio", "authenticate", &resp, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL+"/v2/auth/token", strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return req, err
	})
	if pe, ok := err.(*ProviderError); ok && pe.Status == http.StatusNotFound {
		// A host without the v2 token endpoint: v1's POST /v1/auth gives
		// the same stable papi- token, valid for 24 hours.
		resp.AccessToken, err = p.tokenV1(ctx)
		resp.ExpiresIn = 24 * 60 * 60
	}
	if err != nil {
		return "", err
	}
	if resp.AccessToken == "" {
		return "", perr(ErrBadResponse, "Personio sent no access token")
	}
	life := time.Duration(resp.ExpiresIn) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	// Renew a minute early (or at half-life for short tokens), so a
	// token never expires in the middle of a fetch.
	life -= min(time.Minute, life/2)
	personioTokens.Lock()
	personioTokens.m[key] = cachedToken{resp.AccessToken, time.Now().Add(life)}
	personioTokens.Unlock()
	return resp.AccessToken, nil
}

// tokenV1 authenticates with v1's POST /v1/auth (JSON client_id and
// client_secret; {success, data: {token}}).
func (p *personioAPI) tokenV1(ctx context.Context) (string, error) {
	body, _ := json.Marshal(map[string]string{"client_id": p.Credentials["clientID"], "client_secret": p.Credentials["clientSecret"]})
	var resp struct {
		Success bool `json:"success"`
		Data    struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	err := getJSON(ctx, p.HTTP, "Personio", "authenticate (v1)", &resp, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL+"/v1/auth", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return "", err
	}
	if !resp.Success || resp.Data.Token == "" {
		return "", perr(ErrBadResponse, "Personio sent no token")
	}
	return resp.Data.Token, nil
}

// personioAttr is one attribute of a Personio v1 employee.
type personioAttr struct {
	Value any `json:"value"`
}

func (a personioAttr) str() string {
	switch v := a.Value.(type) {
	case string:
		return v
	case float64:
		return itoa(int(v))
	case map[string]any: // department, office: {type, attributes: {name}}
		if attrs, ok := v["attributes"].(map[string]any); ok {
			if name, ok := attrs["name"].(string); ok {
				return name
			}
		}
	}
	return ""
}

type personioPage struct {
	Success bool `json:"success"`
	Data    []struct {
		Type       string                  `json:"type"`
		Attributes map[string]personioAttr `json:"attributes"`
	} `json:"data"`
	Metadata struct {
		TotalElements int `json:"total_elements"`
		CurrentPage   int `json:"current_page"`
		TotalPages    int `json:"total_pages"`
	} `json:"metadata"`
}

func (p *personioAPI) Employees(ctx context.Context) ([]Employee, error) {
	tok, err := p.token(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []Employee
	retried := false
	for offset, page := 0, 0; page < maxPages; page++ {
		u := p.BaseURL + "/v1/company/employees?" + url.Values{"limit": {itoa(personioPageSize)}, "offset": {itoa(offset)}}.Encode()
		var pg personioPage
		err := getJSON(ctx, p.HTTP, "Personio", "list employees", &pg, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err == nil {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			return req, err
		})
		if pe, ok := err.(*ProviderError); ok && pe.Status == http.StatusUnauthorized && !retried {
			// A cached token revoked early: authenticate once more.
			retried = true
			if tok, err = p.token(ctx, true); err != nil {
				return nil, err
			}
			page--
			continue
		}
		if err != nil {
			return nil, err
		}
		if !pg.Success {
			return nil, perr(ErrBadResponse, "Personio answered without success")
		}
		for _, d := range pg.Data {
			a := d.Attributes
			id := a["id"].str()
			if id == "" {
				continue
			}
			e := Employee{
				ID:         id,
				Name:       joinName(firstNonEmpty(a["preferred_name"].str(), a["first_name"].str()), a["last_name"].str()),
				Email:      a["email"].str(),
				Phone:      firstNonEmpty(a["mobile_phone"].str(), a["work_phone"].str(), a["phone"].str()),
				Department: a["department"].str(),
				StartDate:  parseDate(a["hire_date"].str()),
				EndDate:    parseDate(a["termination_date"].str()),
				UpdatedAt:  parseDate(a["last_modified_at"].str()),
			}
			switch strings.ToLower(a["status"].str()) {
			case "inactive":
				e.Status = Inactive
			case "onboarding":
				e.Status = Pending
			case "leave":
				e.Status = Leave
			default:
				e.Status = Active
			}
			out = append(out, e)
		}
		offset += len(pg.Data)
		// Personio's v1 list counts pages from 0 or 1 depending on the
		// account's API version; the total and a short page both end it.
		if len(pg.Data) < personioPageSize || (pg.Metadata.TotalElements > 0 && offset >= pg.Metadata.TotalElements) {
			return out, nil
		}
	}
	return nil, perr(ErrBadResponse, "Personio kept returning more pages")
}
