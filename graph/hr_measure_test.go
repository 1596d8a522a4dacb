package graph_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"admit/internal/hr/hrtest"
	"admit/internal/testutil"
)

// TestHRMeasure times the HR paths at a few thousand employees through
// the real handler. It runs only with ADMIT_HR_MEASURE=N (employees):
//
//	ADMIT_HR_MEASURE=2000 go test ./graph -run TestHRMeasure -v
func TestHRMeasure(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("ADMIT_HR_MEASURE"), &n); err != nil || n <= 0 {
		t.Skip("set ADMIT_HR_MEASURE to a number of employees")
	}
	e := testutil.New(t)
	org := e.NewOrg("Acme")
	ts := hrtest.Merge(t, "merge-key-000001", "acct")
	ts.PageSize = 100
	var people []hrtest.Person
	for i := range n {
		people = append(people, hrtest.Person{ID: fmt.Sprint(i + 1), First: "Person", Last: fmt.Sprint(i), Email: fmt.Sprintf("p%d@acme.test", i)})
	}
	ts.SetPeople(people...)
	in := map[string]any{"provider": "merge", "baseURL": ts.URL, "autoInvite": true, "syncInterval": "24h", "credentials": []map[string]string{
		{"name": "apiKey", "value": "merge-key-000001"}, {"name": "accountToken", "value": "acct"}}}
	timed := func(what string, fn func()) {
		start := time.Now()
		fn()
		t.Logf("%-40s %8.1f ms", what, float64(time.Since(start).Microseconds())/1000)
	}
	var conn *hrConn
	timed(fmt.Sprintf("connect (%d employees, %d pages)", n, (n+99)/100), func() {
		var errs []hrErr
		if conn, errs = hrConnect(t, e, org.AdminToken, in); len(errs) > 0 {
			t.Fatal(errs)
		}
	})
	timed("hrEmployees first page (50)", func() {
		var p hrEmployeesPage
		wantData(t, e.Do(org.AdminToken, hrEmployeesQuery, map[string]any{"id": conn.ID, "first": 50}), &p)
	})
	timed(fmt.Sprintf("inviteFromHRSystem all (%d)", n), func() {
		if p := hrInvite(t, e, org.AdminToken, map[string]any{"connectionID": conn.ID, "all": true}); p.Counts.Invited != n {
			t.Fatalf("invited %d", p.Counts.Invited)
		}
	})
	people = append(people, hrtest.Person{ID: "new-1", First: "New", Last: "Hire", Email: "new@acme.test"})
	ts.SetPeople(people...)
	e.Clock.Advance(25 * time.Hour)
	timed(fmt.Sprintf("scheduled sync (%d, 1 new)", n+1), func() {
		if ran, err := e.HR.RunDue(context.Background()); err != nil || ran != 1 {
			t.Fatal(ran, err)
		}
	})
	if got := hrInvitationCount(t, e); got != n+1 {
		t.Fatalf("%d invitations", got)
	}
}
