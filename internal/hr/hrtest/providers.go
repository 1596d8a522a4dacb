package hrtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BambooHR answers GET /api/v1/employees (Basic auth: API key, "x";
// page[limit], page[after], fields; meta.page.nextCursor) and, with
// Directory set, only the employee directory
// GET /api/gateway.php/{company}/v1/employees/directory.
func BambooHR(t testing.TB, company, apiKey string, directoryOnly bool) *Server {
	return start(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if user, _, ok := basic(r); !ok || user != apiKey {
			w.WriteHeader(http.StatusUnauthorized) // BambooHR answers 401 with an empty body
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/employees" && !directoryOnly:
			if r.Header.Get("Accept") != "application/json" {
				http.Error(w, "Accept: application/json required", http.StatusNotAcceptable)
				return
			}
			limit, _ := strconv.Atoi(r.URL.Query().Get("page[limit]"))
			offset := 0
			if a := r.URL.Query().Get("page[after]"); a != "" {
				if offset = uncursor(a); offset < 0 {
					writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"detail": "bad cursor"}}})
					return
				}
			}
			ps, next := page(s.People(), offset, s.pageSize(limit))
			data := []map[string]any{}
			for _, p := range ps {
				st := "Active"
				if status(p) == "inactive" {
					st = "Inactive"
				}
				id, _ := strconv.Atoi(p.ID)
				data = append(data, map[string]any{
					"employeeId": id, "firstName": p.First, "lastName": p.Last, "preferredName": nil,
					"status": st, "workEmail": nullable(p.Email), "mobilePhone": nullable(p.Phone),
					"departmentName": nullable(p.Department), "hireDate": nullable(p.Start),
					"terminationDate": nullable(p.End), "_restrictedFields": []string{},
				})
			}
			var nc any
			if next >= 0 {
				nc = cursor(next)
			}
			writeJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{"page": map[string]any{"nextCursor": nc, "prevCursor": nil}}})
		case r.Method == http.MethodGet && r.URL.Path == "/api/gateway.php/"+company+"/v1/employees/directory":
			emps := []map[string]any{}
			for _, p := range s.People() {
				if status(p) != "active" {
					continue // the directory lists active employees only
				}
				emps = append(emps, map[string]any{
					"id": p.ID, "displayName": p.First + " " + p.Last, "firstName": p.First, "lastName": p.Last,
					"workEmail": nullable(p.Email), "mobilePhone": nullable(p.Phone), "department": nullable(p.Department),
				})
			}
			writeJSON(w, http.StatusOK, map[string]any{"fields": []map[string]string{{"id": "displayName", "type": "text", "name": "Display name"}}, "employees": emps})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

// Personio answers POST /v2/auth/token (client credentials, form body;
// access_token, expires_in) and GET /v1/company/employees (Bearer; offset,
// limit at most 100; {success, metadata, offset, limit, data: [{type,
// attributes: {name: {label, value}}}]}). Tokens it issued stay valid.
func Personio(t testing.TB, clientID, secret string, expiresIn int) *Server {
	return personio(t, clientID, secret, expiresIn, false)
}

// PersonioV1 is Personio with only v1's POST /v1/auth (JSON body;
// {success, data: {token}}) for authentication.
func PersonioV1(t testing.TB, clientID, secret string) *Server {
	return personio(t, clientID, secret, 0, true)
}

func personio(t testing.TB, clientID, secret string, expiresIn int, v1 bool) *Server {
	var mu = make(chan struct{}, 1)
	tokens := map[string]bool{}
	n := 0
	return start(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		switch {
		case v1 && r.Method == http.MethodPost && r.URL.Path == "/v1/auth":
			var body struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ClientID != clientID || body.ClientSecret != secret {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": map[string]any{"code": 0, "message": "Wrong credentials"}})
				return
			}
			mu <- struct{}{}
			n++
			tok := "papi-v1-" + strconv.Itoa(n)
			tokens[tok] = true
			<-mu
			writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"token": tok}})
		case !v1 && r.Method == http.MethodPost && r.URL.Path == "/v2/auth/token":
			if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
				return
			}
			if r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client authentication failed"})
				return
			}
			mu <- struct{}{}
			n++
			tok := "papi-token-" + strconv.Itoa(n)
			tokens[tok] = true
			<-mu
			writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": expiresIn, "scope": "personio:persons:read"})
		case r.Method == http.MethodGet && r.URL.Path == "/v1/company/employees":
			mu <- struct{}{}
			ok := tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			<-mu
			if !ok {
				writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": map[string]any{"code": 0, "message": "The token is invalid"}})
				return
			}
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
			if limit > 100 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": map[string]any{"code": 0, "message": "limit must be at most 100"}})
				return
			}
			if limit <= 0 {
				limit = 50
			}
			all := s.People()
			ps, _ := page(all, offset, limit)
			data := []map[string]any{}
			for _, p := range ps {
				attr := func(label string, v any) map[string]any { return map[string]any{"label": label, "value": v} }
				id, _ := strconv.Atoi(p.ID)
				st := map[string]string{"active": "active", "inactive": "inactive", "pending": "onboarding"}[status(p)]
				a := map[string]any{
					"id": attr("ID", id), "first_name": attr("First name", p.First), "last_name": attr("Last name", p.Last),
					"email": attr("Email", p.Email), "status": attr("Status", st),
					"hire_date": attr("Hire date", nullable(dateTime(p.Start))), "termination_date": attr("Termination date", nullable(dateTime(p.End))),
				}
				if p.Department != "" {
					a["department"] = attr("Department", map[string]any{"type": "Department", "attributes": map[string]any{"id": 1, "name": p.Department}})
				}
				data = append(data, map[string]any{"type": "Employee", "attributes": a})
			}
			pages := (len(all) + limit - 1) / limit
			writeJSON(w, http.StatusOK, map[string]any{
				"success":  true,
				"metadata": map[string]any{"total_elements": len(all), "current_page": offset / limit, "total_pages": pages},
				"offset":   offset, "limit": limit, "data": data,
			})
		default:
			writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "error": map[string]any{"message": "not found"}})
		}
	})
}

func dateTime(d string) string {
	if d == "" {
		return ""
	}
	return d + "T00:00:00+01:00"
}

// HiBob answers POST /v1/people/search (Basic auth: service user ID and
// token; {fields, showInactive}) with {employees: [...]}, all at once.
func HiBob(t testing.TB, serviceUser, token string) *Server {
	return start(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := basic(r); !ok || user != serviceUser || pass != token {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"key": "unauthorized", "error": "Unauthorized"})
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/people/search" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
			return
		}
		var body struct {
			Fields       []string `json:"fields"`
			ShowInactive bool     `json:"showInactive"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "bad body"})
			return
		}
		emps := []map[string]any{}
		for _, p := range s.People() {
			st := status(p)
			if st == "inactive" && !body.ShowInactive {
				continue
			}
			life := map[string]string{"active": "employed", "inactive": "terminated", "pending": "hired"}[st]
			active := "Active"
			if st == "inactive" {
				active = "Inactive"
			}
			emps = append(emps, map[string]any{
				"id": p.ID, "firstName": p.First, "surname": p.Last, "displayName": p.First + " " + p.Last, "email": p.Email,
				"work":     map[string]any{"department": nullable(p.Department), "startDate": nullable(p.Start), "mobilePhone": nullable(p.Phone)},
				"internal": map[string]any{"status": active, "terminationDate": nullable(p.End), "lifecycleStatus": life},
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"employees": emps})
	})
}

func unifiedEmployee(p Person) map[string]any {
	st := map[string]string{"active": "ACTIVE", "inactive": "INACTIVE", "pending": "PENDING"}[status(p)]
	date := func(d string) any {
		if d == "" {
			return nil
		}
		return d + "T00:00:00Z"
	}
	groups := []map[string]any{}
	if p.Department != "" {
		groups = append(groups, map[string]any{"id": "g-" + p.Department, "name": p.Department, "type": "DEPARTMENT"})
	}
	return map[string]any{
		"id": "emp-" + p.ID, "remote_id": p.ID, "first_name": p.First, "last_name": p.Last,
		"display_full_name": p.First + " " + p.Last, "work_email": nullable(p.Email),
		"mobile_phone_number": nullable(p.Phone), "employment_status": st,
		"start_date": date(p.Start), "termination_date": date(p.End), "groups": groups,
	}
}

// Merge answers GET /api/hris/v1/employees (Authorization: Bearer key,
// X-Account-Token; page_size, cursor; {next, previous, results}).
func Merge(t testing.TB, apiKey, accountToken string) *Server {
	return start(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey || r.Header.Get("X-Account-Token") != accountToken {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Invalid API key or account token."})
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/api/hris/v1/employees" {
			writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
			return
		}
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		offset := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			if offset = uncursor(c); offset < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"detail": "Invalid cursor."})
				return
			}
		}
		ps, next := page(s.People(), offset, s.pageSize(size))
		results := []map[string]any{}
		for _, p := range ps {
			e := unifiedEmployee(p)
			e["remote_was_deleted"] = false
			e["modified_at"] = "2026-11-01T10:00:00Z"
			results = append(results, e)
		}
		var nc any
		if next >= 0 {
			nc = cursor(next)
		}
		writeJSON(w, http.StatusOK, map[string]any{"next": nc, "previous": nil, "results": results})
	})
}

// Kombo answers GET /v1/hris/employees (Authorization: Bearer key,
// X-Integration-Id; page_size at most 250, cursor; {status, data: {next,
// results}}; errors as {status: "error", error: {code, title, message}}).
func Kombo(t testing.TB, apiKey, integrationID string) *Server {
	return start(t, func(s *Server, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"status": "error", "error": map[string]any{"code": "PLATFORM.AUTHENTICATION_INVALID", "title": "Invalid API key", "message": "The API key is invalid."}})
			return
		}
		if r.Header.Get("X-Integration-Id") != integrationID {
			writeJSON(w, http.StatusNotFound, map[string]any{"status": "error", "error": map[string]any{"code": "PLATFORM.INTEGRATION_NOT_FOUND", "title": "Integration not found", "message": "No integration has this ID."}})
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/v1/hris/employees" {
			writeJSON(w, http.StatusNotFound, map[string]any{"status": "error", "error": map[string]any{"code": "PLATFORM.NOT_FOUND", "title": "Not found", "message": "Not found."}})
			return
		}
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		if size > 250 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"status": "error", "error": map[string]any{"code": "PLATFORM.INPUT_INVALID", "title": "Invalid input", "message": "page_size must be at most 250"}})
			return
		}
		offset := 0
		if c := r.URL.Query().Get("cursor"); c != "" {
			offset = uncursor(c)
		}
		ps, next := page(s.People(), offset, s.pageSize(size))
		results := []map[string]any{}
		for _, p := range ps {
			e := unifiedEmployee(p)
			e["changed_at"] = "2026-11-01T10:00:00.000Z"
			e["remote_deleted_at"] = nil
			results = append(results, e)
		}
		var nc any
		if next >= 0 {
			nc = cursor(next)
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"next": nc, "results": results}})
	})
}
