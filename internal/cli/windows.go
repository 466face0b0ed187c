package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/progress"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
)

// simulateTransactions is `starter simulate transactions -n N`.
func simulateTransactions(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("simulate transactions", []config.FlagGroup{config.ClientFlags})
	if err != nil {
		return err
	}
	n := fs.Int("n", 10000, "transactions to send")
	rate := fs.Float64("rate", 2000, "transactions per second; 0 sends as fast as possible")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *rate < 0 {
		return fmt.Errorf("-n must be at least 1 and -rate 0 or more")
	}
	p, err := kafkaio.NewProducer(cfg.KafkaBootstrap, log, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	run := "t" + strconv.FormatInt(time.Now().UnixMilli(), 36)
	bar := progress.New(out, "transactions", *n)
	if err := txsim.Produce(ctx, p, run, *seed, *n, *rate, bar.Set); err != nil {
		return err
	}
	bar.Done()
	fmt.Fprintf(out, "sent %d transactions (run %s); `starter verify transactions` checks the windows once they close\n", *n, run)
	return nil
}

// verifyTransactions is `starter verify transactions`.
func verifyTransactions(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("verify transactions", []config.FlagGroup{config.ClientFlags, config.ResultsFlags})
	if err != nil {
		return err
	}
	replayed := fs.Bool("replayed", false, "count records recorded late too (after an offset rewind or replay, see README)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	g, err := db.OpenExisting(cfg.Database(), log)
	if err != nil {
		return err
	}
	v, err := txsim.Verify(ctx, cfg.KafkaBootstrap, g, time.Now().Add(-2*time.Second), !*replayed)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d records, %d paid, %d late; %d closed windows checked, %d still open\n", v.Records, v.Paid, v.Late, v.Windows, v.Open)
	for _, d := range v.Differences {
		fmt.Fprintln(out, "  DIFFERENCE", d)
	}
	if len(v.Differences) > 0 {
		return fmt.Errorf("%d windows differ from the recomputation", len(v.Differences))
	}
	fmt.Fprintln(out, "every closed window equals the recomputation from the topic")
	return nil
}

// simulateLikes is `starter simulate likes`: likes for a set of videos, Zipf-skewed.
func simulateLikes(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	fs, cfg, err := configFlags("simulate likes", []config.FlagGroup{config.ClientFlags, config.ResultsFlags})
	if err != nil {
		return err
	}
	videos := fs.Int("videos", 100, "number of videos")
	perMinute := fs.Float64("likes-per-minute", 6000, "likes per minute over all videos")
	duration := fs.Duration("duration", 2*time.Minute, "how long to send")
	skew := fs.Float64("skew", 1.2, "Zipf exponent of video popularity (more than 1; larger is more skewed)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *videos < 1 || *perMinute <= 0 || *skew <= 1 || *duration <= 0 {
		return errors.New("-videos and -likes-per-minute must be positive, -skew more than 1, -duration positive")
	}
	// The summary is read from the results database: it must be there before anything is sent.
	g, err := db.OpenExisting(cfg.Database(), log)
	if err != nil {
		return err
	}
	p, err := kafkaio.NewProducer(cfg.KafkaBootstrap, log, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	total := int(*perMinute * duration.Minutes())
	rng := rand.New(rand.NewPCG(*seed, 0))
	zipf := rand.NewZipf(rng, *skew, 1, uint64(*videos-1))
	bar := progress.New(out, "likes", total)
	start := time.Now()
	var batch []*kafka.Message
	for i := range total {
		due := start.Add(time.Duration(float64(i) / (*perMinute / 60) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			if err := p.Send(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
			bar.Set(i)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		key, value, err := schemas.LikeRecord("video-"+strconv.FormatUint(zipf.Uint64(), 10), time.Now())
		if err != nil {
			return err
		}
		batch = append(batch, kafkaio.Message(schemas.TopicLikes, key, value))
	}
	if err := p.Send(ctx, batch...); err != nil {
		return err
	}
	bar.Set(total)
	bar.Done()
	return printLikesSummary(ctx, g, out)
}

// printLikesSummary prints the most liked videos of the latest closed window of each size.
func printLikesSummary(ctx context.Context, g *gorm.DB, out io.Writer) error {
	fmt.Fprintln(out, "\nmost liked videos in the latest closed window of each size")
	for _, size := range []int64{60, 300, 600} {
		var latest schemas.WindowResult
		q := g.WithContext(ctx).Where("pipeline = ? AND size_seconds = ?", schemas.PipelineLikes, size).Order("window_start DESC").Limit(1).Find(&latest)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 {
			fmt.Fprintf(out, "  %2d min: no window closed yet (a window closes at its end plus 5 s of grace)\n", size/60)
			continue
		}
		var top []schemas.WindowResult
		if err := g.WithContext(ctx).Where("pipeline = ? AND size_seconds = ? AND window_start = ?", schemas.PipelineLikes, size, latest.WindowStart).
			Order("count DESC, key").Limit(5).Find(&top).Error; err != nil {
			return err
		}
		fmt.Fprintf(out, "  %2d min window from %s:\n", size/60, latest.WindowStart.Local().Format("15:04:05"))
		for i, r := range top {
			fmt.Fprintf(out, "    %d. %-12s %6d likes\n", i+1, r.Key, r.Count)
		}
	}
	return nil
}
