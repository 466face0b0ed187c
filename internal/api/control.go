package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/txsim"
	"github.com/tributary-dev/tributary/schemas"
)

// Bounds of a likes simulation started from the dashboard.
const (
	MaxLikesPerMinute = 60000
	MaxVideos         = 1000
)

// likesSim is the likes simulation the API runs for the dashboard's control: at most one,
// sending likes per minute per video until stopped.
type likesSim struct {
	// starting serialises starts, so two at once cannot leave one simulation unstoppable.
	starting sync.Mutex
	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	setting  likesSetting
	sent     int64
	err      string
}

type likesSetting struct {
	// PerMinute is likes per minute per video.
	PerMinute float64 `json:"likes_per_minute"`
	Videos    int     `json:"videos"`
}

type likesStatus struct {
	Running bool         `json:"running"`
	Setting likesSetting `json:"setting"`
	Sent    int64        `json:"sent"`
	Error   string       `json:"error,omitempty"`
}

func (l *likesSim) status() likesStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return likesStatus{Running: l.cancel != nil, Setting: l.setting, Sent: l.sent, Error: l.err}
}

// stop ends a running simulation and waits for it.
func (l *likesSim) stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// startLikes is POST /api/simulations/likes {"likes_per_minute": n, "videos": m}: it
// (re)starts sending n likes a minute to each of videos video-0 … video-(m-1), spread
// evenly in time, until DELETE /api/simulations/likes or the server stops.
func (s *Server) startLikes(w http.ResponseWriter, r *http.Request) {
	var set likesSetting
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		writeError(w, http.StatusBadRequest, "body: want {\"likes_per_minute\": n, \"videos\": m}: "+err.Error())
		return
	}
	if set.PerMinute <= 0 || set.Videos < 1 || set.Videos > MaxVideos || set.PerMinute*float64(set.Videos) > MaxLikesPerMinute {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("likes_per_minute must be positive, videos 1 to %d, and their product at most %d", MaxVideos, MaxLikesPerMinute))
		return
	}
	if s.Producer == nil {
		writeError(w, http.StatusServiceUnavailable, "no Kafka producer")
		return
	}
	s.likes.starting.Lock()
	defer s.likes.starting.Unlock()
	s.likes.stop()
	ctx, cancel := context.WithCancel(s.base)
	done := make(chan struct{})
	s.likes.mu.Lock()
	s.likes.cancel, s.likes.done, s.likes.setting, s.likes.sent, s.likes.err = cancel, done, set, 0, ""
	s.likes.mu.Unlock()
	go func() {
		defer close(done)
		err := s.sendLikes(ctx, set)
		s.likes.mu.Lock()
		if err != nil && ctx.Err() == nil {
			s.likes.err = err.Error()
			s.likes.cancel = nil
		}
		s.likes.mu.Unlock()
	}()
	writeJSON(w, http.StatusAccepted, s.likes.status())
}

// sendLikes sends the setting's likes, a batch every 250 ms, until ctx ends.
func (s *Server) sendLikes(ctx context.Context, set likesSetting) error {
	const tick = 250 * time.Millisecond
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	perTick := set.PerMinute * float64(set.Videos) * tick.Seconds() / 60
	owed := 0.0
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		owed += perTick
		n := int(owed)
		owed -= float64(n)
		batch := make([]*kafka.Message, 0, n)
		for range n {
			key, value, err := schemas.LikeRecord("video-"+strconv.Itoa(rng.IntN(set.Videos)), s.now())
			if err != nil {
				return err
			}
			batch = append(batch, kafkaio.Message(schemas.TopicLikes, key, value))
		}
		if err := s.Producer.Send(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("send likes: %w", err)
		}
		s.likes.mu.Lock()
		s.likes.sent += int64(n)
		s.likes.mu.Unlock()
	}
}

func (s *Server) stopLikes(w http.ResponseWriter, _ *http.Request) {
	s.likes.stop()
	writeJSON(w, http.StatusOK, s.likes.status())
}

func (s *Server) likesStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.likes.status())
}

// verifyTransactions is GET /api/transactions/verify: the transactions topic recomputed
// (txsim.Verify), compared with the window rows, as `starter verify transactions` does.
func (s *Server) verifyTransactions(w http.ResponseWriter, r *http.Request) {
	if s.Bootstrap == "" {
		writeError(w, http.StatusServiceUnavailable, "no Kafka bootstrap to read the topic from")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	v, err := txsim.Verify(ctx, s.Bootstrap, s.DB, s.now().Add(-2*time.Second), true)
	if err != nil {
		s.fail(w, fmt.Errorf("verify transactions: %w", err))
		return
	}
	if v.Differences == nil {
		v.Differences = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": v.Records, "paid": v.Paid, "late": v.Late, "windows": v.Windows,
		"open": v.Open, "differences": v.Differences, "equal": len(v.Differences) == 0})
}

func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/simulations/likes", s.startLikes)
	mux.HandleFunc("DELETE /api/simulations/likes", s.stopLikes)
	mux.HandleFunc("GET /api/simulations/likes", s.likesStatus)
	mux.HandleFunc("GET /api/transactions/verify", s.verifyTransactions)
}
