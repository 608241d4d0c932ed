package alert_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/alert"
	"github.com/wharfml/wharf/internal/smtptest"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
	"github.com/wharfml/wharf/storetest"
)

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Sealer = storetest.NewSealer(t)
	t.Cleanup(func() { db.Close() })
	if _, err := db.PutWorkspace(t.Context(), &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// clock is a settable clock for the dispatcher's backoff.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestWebhookSignedRetriedAndRecorded(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	if _, err := db.SetSecret(ctx, wharf.WorkspaceScope("ws"), "hook-key", []byte("s3cret"), ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if got := r.Header.Get(alert.SignatureHeader); got != alert.Sign([]byte("s3cret"), b) {
			t.Errorf("signature %q does not match the body", got)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			t.Errorf("%s with %s", r.Method, r.Header.Get("Content-Type"))
		}
		bodies = append(bodies, string(b))
	}))
	defer srv.Close()
	clk := &clock{t: time.Date(2026, 12, 1, 3, 15, 0, 0, time.UTC)}
	hook := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertWebhook, Target: srv.URL, Secret: "hook-key",
		Body: `{"signal":"drift"}`, NextAttempt: clk.Now()}
	if err := db.RecordMonitorRun(ctx, &wharf.MonitorRun{Workspace: "ws", Schedule: "mon", Job: "j1", Time: clk.Now()}, []*wharf.MonitorAlert{hook}); err != nil {
		t.Fatal(err)
	}
	d := &alert.Dispatcher{Store: db, Now: clk.Now, Backoff: time.Minute}
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	// The 503 is recorded, and the retry waits out its backoff.
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("calls before the backoff ended = %d, want 1", calls)
	}
	clk.Add(time.Minute)
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(bodies) != 1 || bodies[0] != `{"signal":"drift"}` {
		t.Fatalf("calls = %d, bodies = %q", calls, bodies)
	}
	alerts, deliveries, err := db.ListAlerts(ctx, "ws", "mon")
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].DeliveredAt == nil || alerts[0].Attempts != 2 {
		t.Errorf("alert = %+v", alerts[0])
	}
	if len(deliveries) != 2 || deliveries[0].Status != 503 || !strings.Contains(deliveries[0].Error, "503") || deliveries[1].Status != 200 {
		b, _ := json.Marshal(deliveries)
		t.Errorf("deliveries = %s", b)
	}
}

func TestEmailOverStartTLS(t *testing.T) {
	ctx := context.Background()
	smtp := smtptest.Start(t)
	db := openStore(t)
	queueEmail(t, db, time.Time{}, "The signal 'drift' has failed.\nfeature distance")
	d := &alert.Dispatcher{Store: db, Mail: mailServer(smtp, smtp.Password)}
	if err := d.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	// Delivered once: a second pass, or a restarted dispatcher, sends
	// nothing more.
	if err := (&alert.Dispatcher{Store: db, Mail: d.Mail}).DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	got := smtp.Messages(t)
	if len(got) != 1 {
		t.Fatalf("messages = %d, want 1", len(got))
	}
	m := got[0]
	if !m.TLS || m.From != "wharf@example.com" || len(m.To) != 1 || m.To[0] != "ops@example.com" ||
		!strings.Contains(m.Data, "Subject: Monitor taxi: signal drift breached") || !strings.Contains(m.Data, "feature distance") {
		t.Errorf("message = %+v", m)
	}
	_, deliveries, err := db.ListAlerts(ctx, "ws", "mon")
	if err != nil || len(deliveries) != 1 || deliveries[0].Status != 250 {
		t.Errorf("deliveries = %+v, %v", deliveries, err)
	}
}

// TestEmailWithAWrongPasswordFailsWithTheServersReason: the SMTP server
// refuses the credentials; the attempt is recorded as failed with the
// server's reply, retried after the backoff, and once the password is
// right the e-mail is sent exactly once.
func TestEmailWithAWrongPasswordFailsWithTheServersReason(t *testing.T) {
	ctx := context.Background()
	smtp, db, clk := queuedEmail(t)
	wrong := &alert.Dispatcher{Store: db, Mail: mailServer(smtp, "not-"+smtp.Password), Now: clk.Now, Backoff: time.Minute, MaxAttempts: 3}
	if err := wrong.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	alerts, deliveries, err := db.ListAlerts(ctx, "ws", "mon")
	if err != nil {
		t.Fatal(err)
	}
	a := alerts[0]
	if len(deliveries) != 1 || deliveries[0].Status != 535 || !strings.Contains(deliveries[0].Error, "Authentication") {
		t.Fatalf("deliveries after a wrong password = %+v", deliveries)
	}
	if a.DeliveredAt != nil || a.FailedAt != nil || a.Attempts != 1 || a.LastError != deliveries[0].Error ||
		!a.NextAttempt.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("alert after a wrong password = %+v", a)
	}
	if n := len(smtp.Messages(t)); n != 0 {
		t.Fatalf("messages sent with a wrong password = %d", n)
	}

	// The password is fixed: nothing is sent before the backoff ends,
	// then the e-mail once, and never again.
	right := &alert.Dispatcher{Store: db, Mail: mailServer(smtp, smtp.Password), Now: clk.Now, Backoff: time.Minute, MaxAttempts: 3}
	if err := right.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(smtp.Messages(t)); n != 0 {
		t.Fatalf("messages before the backoff ended = %d", n)
	}
	clk.Add(time.Minute)
	for range 2 {
		if err := right.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := smtp.Messages(t); len(got) != 1 || got[0].To[0] != "ops@example.com" {
		t.Fatalf("messages = %+v", got)
	}
	alerts, deliveries, err = db.ListAlerts(ctx, "ws", "mon")
	if err != nil {
		t.Fatal(err)
	}
	if a := alerts[0]; a.DeliveredAt == nil || a.Attempts != 2 || a.LastError != "" || len(deliveries) != 2 || deliveries[1].Status != 250 {
		t.Errorf("alert = %+v, deliveries = %+v", a, deliveries)
	}
}

// TestEmailGivenUpAfterItsLastAttempt: a password that stays wrong ends
// the retries at MaxAttempts, the alert marked failed with the server's
// reason.
func TestEmailGivenUpAfterItsLastAttempt(t *testing.T) {
	ctx := context.Background()
	smtp, db, clk := queuedEmail(t)
	d := &alert.Dispatcher{Store: db, Now: clk.Now, Backoff: time.Minute, MaxAttempts: 2, Mail: mailServer(smtp, "wrong")}
	for range 4 {
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
	}
	alerts, deliveries, err := db.ListAlerts(ctx, "ws", "mon")
	if err != nil {
		t.Fatal(err)
	}
	if a := alerts[0]; a.FailedAt == nil || a.DeliveredAt != nil || a.Attempts != 2 || !strings.Contains(a.LastError, "535") || len(deliveries) != 2 {
		t.Errorf("alert = %+v, deliveries = %+v", a, deliveries)
	}
	if n := len(smtp.Messages(t)); n != 0 {
		t.Errorf("messages = %d", n)
	}
}

// queueEmail records a monitor run whose breach e-mails ops@example.com,
// due at due.
func queueEmail(t *testing.T, db *sqlstore.DB, due time.Time, body string) {
	t.Helper()
	mail := &wharf.MonitorAlert{Signal: "drift", Channel: wharf.AlertEmail, Target: "ops@example.com",
		Subject: "Monitor taxi: signal drift breached", Body: body, NextAttempt: due}
	if err := db.RecordMonitorRun(t.Context(), &wharf.MonitorRun{Workspace: "ws", Schedule: "mon", Job: "j1", Time: due}, []*wharf.MonitorAlert{mail}); err != nil {
		t.Fatal(err)
	}
}

// mailServer is the test's SMTP server, authenticating with password.
func mailServer(smtp *smtptest.Server, password string) *alert.SMTP {
	return &alert.SMTP{Host: smtp.Host, Port: smtp.Port, From: "wharf@example.com", Username: smtp.User, Password: password,
		StartTLS: "always", TLSConfig: &tls.Config{RootCAs: smtp.Pool, ServerName: smtp.Host}}
}

// queuedEmail starts an SMTP server and a store holding one e-mail alert,
// due now by the returned clock.
func queuedEmail(t *testing.T) (*smtptest.Server, *sqlstore.DB, *clock) {
	smtp := smtptest.Start(t)
	db := openStore(t)
	clk := &clock{t: time.Date(2026, 12, 1, 3, 15, 0, 0, time.UTC)}
	queueEmail(t, db, clk.Now(), "The signal 'drift' has failed.")
	return smtp, db, clk
}
