// Package activities holds the side effects Tributary's workflows ask for: database writes
// and Kafka records. Every activity may run more than once, so each writes upserts keyed by
// what it describes and produces records keyed so that a repeat is recognisable.
package activities

import (
	"log/slog"

	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/kafkaio"
)

// Activities carries the dependencies of every activity. Workflows call its methods through
// a nil *Activities; the worker registers a real one.
type Activities struct {
	DB        *gorm.DB
	Producer  *kafkaio.Producer
	Bootstrap string
	Log       *slog.Logger
	// Windows delivers visit speeds to the sensors window pipeline.
	Windows WindowSender
}
