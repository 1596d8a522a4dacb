package hr

import "strings"

// unifiedEmployee is the employee model Merge's and Kombo's unified HRIS
// APIs share (they agree on these names).
type unifiedEmployee struct {
	ID                string `json:"id"`
	FirstName         string `json:"first_name"`
	LastName          string `json:"last_name"`
	DisplayFullName   string `json:"display_full_name"`
	WorkEmail         string `json:"work_email"`
	MobilePhoneNumber string `json:"mobile_phone_number"`
	EmploymentStatus  string `json:"employment_status"`
	StartDate         string `json:"start_date"`
	TerminationDate   string `json:"termination_date"`
	ModifiedAt        string `json:"modified_at"` // Merge
	ChangedAt         string `json:"changed_at"`  // Kombo
	RemoteWasDeleted  bool   `json:"remote_was_deleted"`
	Groups            []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"groups"`
}

func (u unifiedEmployee) normalize() Employee {
	e := Employee{
		ID:        u.ID,
		Name:      firstNonEmpty(u.DisplayFullName, joinName(u.FirstName, u.LastName)),
		Email:     u.WorkEmail,
		Phone:     u.MobilePhoneNumber,
		StartDate: parseDate(u.StartDate),
		EndDate:   parseDate(u.TerminationDate),
		UpdatedAt: parseDate(firstNonEmpty(u.ModifiedAt, u.ChangedAt)),
		Status:    Active,
	}
	switch strings.ToUpper(u.EmploymentStatus) {
	case "PENDING":
		e.Status = Pending
	case "INACTIVE":
		e.Status = Inactive
	case "LEAVE":
		e.Status = Leave
	}
	for _, g := range u.Groups {
		if strings.EqualFold(g.Type, "DEPARTMENT") && g.Name != "" {
			e.Department = g.Name
			break
		}
	}
	return e
}
