// Package serve runs an HTTP server on a listener until its context ends, then shuts it
// down gracefully: the one loop the API and the metrics listener share.
package serve

import (
	"context"
	"net"
	"net/http"
	"time"
)

// ShutdownGrace bounds how long requests in flight may finish once the context ends.
const ShutdownGrace = 5 * time.Second

// Until serves h on ln until ctx ends (nil) or the server fails (its error).
func Until(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}
