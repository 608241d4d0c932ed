package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// PollInterval is how often Listen calls resync while it has no
// connection to listen on: the polling fallback that bounds how late a
// change is seen while notifications cannot arrive.
const PollInterval = time.Second

// Listen receives the notifications other servers send on channels (see
// sqlstore.DB.Notify) over a connection of its own to the database at url,
// and calls on with each, until ctx is done. Whenever it is not listening
// (before the first connection, after one drops) it calls resync every
// PollInterval, and once more when listening again, since notifications
// sent meanwhile are lost.
func Listen(ctx context.Context, url string, channels []string, logger *slog.Logger, on func(channel, payload string), resync func()) {
	if logger == nil {
		logger = slog.Default()
	}
	for ctx.Err() == nil {
		err := listenOnce(ctx, url, channels, on, resync)
		if ctx.Err() != nil {
			return
		}
		logger.Warn("listening for other servers' changes failed; polling until it works again", "err", err)
		resync()
		select {
		case <-ctx.Done():
			return
		case <-time.After(PollInterval):
		}
	}
}

// listenOnce listens on one connection until it fails.
func listenOnce(ctx context.Context, url string, channels []string, on func(channel, payload string), resync func()) error {
	cctx, cancel := context.WithTimeout(ctx, PollInterval)
	conn, err := pgx.Connect(cctx, url)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	resync()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		on(n.Channel, n.Payload)
	}
}
