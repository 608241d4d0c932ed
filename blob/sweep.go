package blob

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharfml/wharf"
)

// SweepInterval is how often the server that runs the scheduler sweeps what
// crashed uploads left in the blob store.
const SweepInterval = time.Hour

// SweepStagedEvery sweeps s, if it stages uploads where a crash leaves them
// (wharf.BlobStagingSweeper), at once and then every interval until ctx
// ends, deleting what was staged and left untouched for staleTempAge. One
// server runs it, the one holding the scheduler's lease, so that several
// over one store do not all list it; a failed sweep is logged and tried
// again at the next interval.
func SweepStagedEvery(ctx context.Context, s wharf.BlobStore, interval time.Duration, logger *slog.Logger) {
	sweeper, ok := s.(wharf.BlobStagingSweeper)
	if !ok {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := sweeper.SweepStaged(ctx, time.Now().Add(-staleTempAge))
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("sweeping what interrupted uploads left in the blob store failed; trying again later", "err", err)
		case n > 0:
			logger.Info("deleted what interrupted uploads left in the blob store", "objects", n, "older_than", staleTempAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
