package cli

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/sensorsim"
	"github.com/tributary-dev/tributary/schemas"
)

// feed keeps traffic past five sensors and likes of twenty videos flowing until ctx ends,
// so that the dashboard of a demo has something to show.
func feed(ctx context.Context, cfg config.Config, p *kafkaio.Producer, log *slog.Logger) {
	go func() {
		for round := uint64(1); ctx.Err() == nil; round++ {
			sc := sensorsim.Scenario{Sensors: 5, Travelers: 60, Legs: 2, FieldOfView: 40, Every: 500 * time.Millisecond, Noise: 0.1,
				Jitter: min(time.Second, cfg.Sensors.Disorder/2), Start: time.Now().Add(100 * time.Millisecond), Spread: time.Minute,
				Pause: cfg.Sensors.IdleGap + cfg.Sensors.Disorder + time.Second, Bad: 0.02, Seed: round,
				Run: "demo" + strconv.FormatUint(round, 10) + "-"}
			_, deliveries := sc.Generate()
			if err := sensorsim.Produce(ctx, p, deliveries, true, nil); err != nil && ctx.Err() == nil {
				log.Warn("demo traffic", "err", err)
				return
			}
		}
	}()
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		zipf := rand.NewZipf(rng, 1.3, 1, 19)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			key, value, err := schemas.LikeRecord(fmt.Sprintf("video-%d", zipf.Uint64()), time.Now())
			if err == nil {
				err = p.Send(ctx, kafkaio.Message(schemas.TopicLikes, key, value))
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("demo likes", "err", err)
				return
			}
		}
	}()
}
