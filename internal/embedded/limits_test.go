package embedded

import (
	"testing"

	"go.temporal.io/server/common/dynamicconfig"

	"github.com/tributary-dev/tributary/bridge"
)

// The join's largest updates log no warning, and the warning still comes before Temporal
// refuses a payload.
func TestPayloadWarningSitsBetweenTheUpdatesAndTheLimit(t *testing.T) {
	limit := dynamicconfig.BlobSizeLimitError.Get(dynamicconfig.NewNoopCollection())("default")
	if bridge.MaxUpdateBytes >= PayloadWarnBytes || PayloadWarnBytes >= limit {
		t.Errorf("updates of up to %d bytes, a warning above %d, Temporal's limit %d", bridge.MaxUpdateBytes, PayloadWarnBytes, limit)
	}
	if DynamicConfig()[dynamicconfig.BlobSizeLimitWarn.Key().String()] != PayloadWarnBytes {
		t.Error("the server does not warn where the clients do")
	}
}
