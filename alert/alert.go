// Package alert delivers the alerts model monitors raise: e-mail through
// an SMTP server and signed webhooks. Alerts are read from the store's
// outbox, where a monitor run wrote them in the transaction that stored
// its results, and each attempt is recorded there, so a restart neither
// loses an alert nor sends a delivered one again.
package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/wharfml/wharf"
)

// SMTP is the mail server alerts are sent through.
type SMTP struct {
	Host string
	Port int
	From string
	// Username and Password, when set, authenticate with PLAIN, which is
	// only done over TLS (or to a server on the loopback interface).
	Username, Password string
	// StartTLS is "auto" (upgrade when the server offers it), "always"
	// (fail without it) or "never".
	StartTLS string
	// TLSConfig verifies the server's certificate; nil uses the system's
	// roots with Host as the name.
	TLSConfig *tls.Config
}

// SignatureHeader carries a webhook body's HMAC-SHA256, keyed with the
// webhook's secret, as sha256=<hex>.
const SignatureHeader = "X-Wharf-Signature"

// Sign returns the SignatureHeader value of body under key.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Dispatcher delivers the due alerts of a store, retrying failures with
// exponential backoff.
type Dispatcher struct {
	Store wharf.Store
	// Mail is the SMTP server; nil leaves e-mail alerts undelivered
	// (they wait in the store for a server started with one).
	Mail   *SMTP
	HTTP   *http.Client
	Logger *slog.Logger
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one up to MaxBackoff; MaxAttempts ends the retries.
	Backoff     time.Duration
	MaxBackoff  time.Duration
	MaxAttempts int
	// Interval is how often the store is read for due alerts.
	Interval time.Duration
	Now      func() time.Time

	wake chan struct{}
}

func (d *Dispatcher) defaults() {
	if d.HTTP == nil {
		d.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Backoff <= 0 {
		d.Backoff = 10 * time.Second
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = time.Hour
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 12
	}
	if d.Interval <= 0 {
		d.Interval = 5 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.wake == nil {
		d.wake = make(chan struct{}, 1)
	}
}

// Run delivers due alerts until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) {
	d.defaults()
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	for {
		if err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Error("delivering alerts failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// Wake asks Run to look for due alerts now, after a monitor run wrote
// some.
func (d *Dispatcher) Wake() {
	if d == nil || d.wake == nil {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// DeliverDue makes one attempt at every alert due now.
func (d *Dispatcher) DeliverDue(ctx context.Context) error {
	d.defaults()
	due, err := d.Store.DueAlerts(ctx, d.Now(), 100)
	if err != nil {
		return err
	}
	for _, a := range due {
		if a.Channel == wharf.AlertEmail && d.Mail == nil {
			continue
		}
		status, err := d.deliver(ctx, a)
		now := d.Now().UTC()
		a.Attempts++
		rec := &wharf.AlertDelivery{AlertID: a.ID, Attempt: a.Attempts, Time: now, Status: status}
		if err == nil {
			a.DeliveredAt, a.LastError = &now, ""
		} else {
			rec.Error, a.LastError = err.Error(), err.Error()
			if a.Attempts >= d.MaxAttempts {
				a.FailedAt = &now
			} else {
				a.NextAttempt = now.Add(d.backoff(a.Attempts))
			}
			d.Logger.Warn("alert delivery failed", "alert", a.ID, "channel", a.Channel, "target", a.Target, "attempt", a.Attempts, "err", err)
		}
		if err := d.Store.RecordAlertDelivery(ctx, a, rec); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.Backoff
	for i := 1; i < attempts && b < d.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.MaxBackoff)
}

func (d *Dispatcher) deliver(ctx context.Context, a *wharf.MonitorAlert) (int, error) {
	switch a.Channel {
	case wharf.AlertEmail:
		return d.Mail.Send(ctx, a.Target, a.Subject, a.Body)
	case wharf.AlertWebhook:
		return d.post(ctx, a)
	}
	return 0, fmt.Errorf("unknown alert channel %q", a.Channel)
}

func (d *Dispatcher) post(ctx context.Context, a *wharf.MonitorAlert) (int, error) {
	body := []byte(a.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wharf-alerts")
	req.Header.Set("X-Wharf-Event", "monitor.threshold_breached")
	req.Header.Set("X-Wharf-Delivery", strconv.FormatInt(a.ID, 10))
	if a.Secret != "" {
		sec, err := d.Store.GetSecret(ctx, wharf.WorkspaceScope(a.Workspace), a.Secret, "")
		if err != nil {
			return 0, fmt.Errorf("webhook secret %s: %s", a.Secret, wharf.ErrorMessage(err))
		}
		req.Header.Set(SignatureHeader, Sign(sec.Value, body))
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Send mails one plain-text message and returns the server's last reply
// code.
func (m *SMTP) Send(ctx context.Context, to, subject, body string) (int, error) {
	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		conn.Close()
		return code(err), err
	}
	defer c.Close()
	if err := c.Hello("wharf"); err != nil {
		return code(err), err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && m.StartTLS != "never" {
		cfg := m.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{ServerName: m.Host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return code(err), fmt.Errorf("STARTTLS: %w", err)
		}
	} else if m.StartTLS == "always" {
		return 0, errors.New("the SMTP server does not offer STARTTLS")
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, m.Host)); err != nil {
			return code(err), err
		}
	}
	if err := c.Mail(m.From); err != nil {
		return code(err), err
	}
	if err := c.Rcpt(to); err != nil {
		return code(err), err
	}
	w, err := c.Data()
	if err != nil {
		return code(err), err
	}
	msg := "From: " + m.From + "\r\nTo: " + to + "\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n") + "\r\n"
	if _, err := io.WriteString(w, msg); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return code(err), err
	}
	if err := c.Quit(); err != nil {
		return code(err), err
	}
	return 250, nil
}

// code is the SMTP reply code of err, 0 when it has none.
func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
