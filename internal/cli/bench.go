package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
)

func bench(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	return errors.New("not built yet")
}
