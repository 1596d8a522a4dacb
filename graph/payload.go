package graph

// userErrors returns a one-error list for a payload's `errors`.
func userErrors(code ErrorCode, field, msg string) []*UserError {
	e := &UserError{Code: code, Message: msg}
	if field != "" {
		e.Field = &field
	}
	return []*UserError{e}
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
