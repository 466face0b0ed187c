package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/api"
	"github.com/tributary-dev/tributary/pipelines"
)

// recorder stands in for the broker at the ingest's unit boundary: it keeps what was sent.
type recorder struct {
	mu   sync.Mutex
	sent []*kafka.Message
}

func (r *recorder) Send(_ context.Context, msgs ...*kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, msgs...)
	return nil
}

// FuzzLikesIngest: any path id and body get 202 or a 4xx with a JSON error, and whatever
// the ingest accepts, the likes pipeline accepts too: the HTTP door lets in nothing the
// bridge would dead-letter.
func FuzzLikesIngest(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"v1", ""}, {"v1", `{"count":3}`}, {"v1", `{"count":0}`}, {"v1", `{"count":1001}`},
		{"v1", `{"count":"3"}`}, {"v1", `{"count":3,"x":1}`}, {"v1", `{{`}, {"a|b", ""},
		{"%ff", ""}, {"%00", ""}, {"v1", `{"count":1e400}`}, {"v1", `{"count":-1}`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	spec := pipelines.Likes()
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		rec := &recorder{}
		h := (&api.Server{Producer: rec, Now: func() time.Time { return now }}).Handler()
		req := httptest.NewRequest(http.MethodPost, "/videos/x/likes", bytes.NewReader(body))
		req.URL.Path = "/videos/" + id + "/likes"
		req.URL.RawPath = "/videos/" + url.PathEscape(id) + "/likes"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch {
		case w.Code == http.StatusAccepted:
			if len(rec.sent) == 0 {
				t.Fatal("202 without a record sent")
			}
			for _, m := range rec.sent {
				if _, err := spec.Extract(m.Key, m.Value); err != nil {
					t.Fatalf("ingest of %q accepted a like the pipeline refuses: %v", id, err)
				}
			}
		case w.Code >= 400 && w.Code < 500 && w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed:
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without a JSON error: %q", w.Code, w.Body.String())
			}
			if len(rec.sent) > 0 {
				t.Fatalf("%d but %d records were sent", w.Code, len(rec.sent))
			}
		case w.Code == http.StatusNotFound || w.Code == http.StatusMethodNotAllowed || w.Code == http.StatusTemporaryRedirect || w.Code == http.StatusPermanentRedirect:
			// A path the router does not match (an id with '/' in it), or one it first
			// cleans ("/videos//likes").
			if len(rec.sent) > 0 {
				t.Fatal("records sent for an unrouted path")
			}
		default:
			t.Fatalf("status %d for id %q body %q: %s", w.Code, id, body, w.Body.String())
		}
	})
}
