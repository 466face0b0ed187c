// Package activities holds the side effects Tributary's workflows ask for: database writes
// and Kafka records. Every activity may run more than once, so each writes upserts keyed by
// what it describes, and writes its output records to the outbox in the same transaction
// (internal/outbox relays them exactly once) rather than producing them itself.
package activities

import (
	"context"
	"github.com/tributary-dev/tributary/internal/metrics"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"
)

// Producer sends records and returns once the broker has every one of them (the worker
// gives an idempotent producer with acks=all).
type Producer interface {
	Send(ctx context.Context, msgs ...*kafka.Message) error
}

// Activities carries the dependencies of every activity. Workflows call its methods through
// a nil *Activities; the worker registers a real one.
type Activities struct {
	DB        *gorm.DB
	Producer  Producer
	Bootstrap string
	// Log receives what activities report (slog.Default when nil).
	Log *slog.Logger
	// Windows delivers visit speeds to the sensors window pipeline.
	Windows WindowSender
	// Kick, if set, wakes the outbox relay after a commit that wrote output records.
	Kick func()
	// Metrics, if set, observe ack delays and window-close delays.
	Metrics *metrics.Set
}

func (a *Activities) kick() {
	if a.Kick != nil {
		a.Kick()
	}
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}
