package sms_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"admit/internal/mail"
	"admit/internal/sms"
)

// twilio is a local server that follows Twilio's documented Messages API:
// Basic auth, a form-encoded POST, a 201 with the message resource, and
// error bodies {"code", "message", "more_info", "status"}.
func twilio(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *[]*http.Request) {
	t.Helper()
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = append(got, r)
		if user, pass, ok := r.BasicAuth(); !ok || user != "AC123" || pass != "secret-token" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`))
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code": 20404, "message": "The requested resource was not found", "status": 404}`))
			return
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func created(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"sid": "SM0123", "status": "queued", "to": "` + r.PostForm.Get("To") + `", "body": "` + r.PostForm.Get("Body") + `", "error_code": null}`))
}

func TestTwilioSendsTheDocumentedRequest(t *testing.T) {
	srv, got := twilio(t, created)
	s := &sms.Twilio{AccountSID: "AC123", AuthToken: "secret-token", From: "+15005550006", APIBase: srv.URL}
	if err := s.Send(context.Background(), sms.Message{To: "+442079460958", Body: "Join Acme: https://a.test/x"}); err != nil {
		t.Fatal(err)
	}
	r := (*got)[0]
	if r.PostForm.Get("To") != "+442079460958" || r.PostForm.Get("From") != "+15005550006" || r.PostForm.Get("Body") != "Join Acme: https://a.test/x" {
		t.Fatalf("form: %v", r.PostForm)
	}
	s.MessagingServiceSID, s.From = "MG999", ""
	if err := s.Send(context.Background(), sms.Message{To: "+442079460958", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if r := (*got)[1]; r.PostForm.Get("MessagingServiceSid") != "MG999" || r.PostForm.Has("From") {
		t.Fatalf("messaging service form: %v", r.PostForm)
	}
}

func TestTwilioErrorsDecideRetries(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    int
		body      string
		permanent bool
		code      int
	}{
		{"invalid number", 400, `{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`, true, 21211},
		{"unsubscribed", 400, `{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}`, true, 21610},
		{"too many requests", 429, `{"code": 20429, "message": "Too Many Requests", "status": 429}`, false, 20429},
		{"server error", 503, `Service Unavailable`, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := twilio(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			err := (&sms.Twilio{AccountSID: "AC123", AuthToken: "secret-token", From: "+15005550006", APIBase: srv.URL}).Send(context.Background(), sms.Message{To: "+15551234567", Body: "x"})
			var te *sms.Error
			if !errors.As(err, &te) || te.Code != tt.code || te.Status != tt.status {
				t.Fatalf("want a Twilio error %d/%d, got %v", tt.status, tt.code, err)
			}
			if mail.IsPermanent(err) != tt.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", mail.IsPermanent(err), tt.permanent, err)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatal("the error shows the auth token")
			}
		})
	}
	// Wrong credentials are permanent too (nothing a retry can fix).
	srv, _ := twilio(t, created)
	err := (&sms.Twilio{AccountSID: "AC123", AuthToken: "wrong", From: "+1", APIBase: srv.URL}).Send(context.Background(), sms.Message{To: "+15551234567", Body: "x"})
	if !mail.IsPermanent(err) {
		t.Fatalf("wrong credentials: want a permanent error, got %v", err)
	}
}

func TestSegments(t *testing.T) {
	for _, tt := range []struct {
		body string
		want int
	}{
		{strings.Repeat("a", 160), 1}, {strings.Repeat("a", 161), 2}, {strings.Repeat("é", 160), 1},
		{strings.Repeat("ж", 70), 1}, {strings.Repeat("ж", 71), 2},
	} {
		if got := sms.Segments(tt.body); got != tt.want {
			t.Errorf("Segments(%d × %q) = %d, want %d", len([]rune(tt.body)), []rune(tt.body)[0], got, tt.want)
		}
	}
}
