package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/schemas"
)

// maxPiecesPerUpdate bounds the pieces of one update, well under Temporal's payload limit.
const maxPiecesPerUpdate = 500

// pieceUpdateTimeout bounds one update of grouped pieces; its callers' activities retry
// past it.
const pieceUpdateTimeout = time.Minute

// ErrSenderClosed is returned to callers of a PieceSender that was closed.
var ErrSenderClosed = errors.New("piece sender closed")

// PieceSender hands window pieces built outside the bridge (the speeds of a traveler's
// visits, from the FlushVisits activity) to their window workflows, and implements
// activities.WindowSender. A piece is applied once: a repeat within a group is merged with
// the first, and one the workflow already applied is dropped when the workflow turns the
// batch away.
//
// Callers for the same workflow are grouped (group commit): while one update is in flight,
// the pieces of every caller that arrives meanwhile wait and go together in the next, so a
// process sends one update at a time per workflow however many travelers flush at once.
type PieceSender struct {
	router *Window
	// ctx ends with Close; the updates run under it, not under one caller's context, since
	// they carry the pieces of every caller of their group.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// waiting holds, per workflow, the group the next update takes.
	waiting map[string]*pieceGroup
	// sending marks the workflows whose sender goroutine runs.
	sending map[string]bool
}

// pieceGroup is the pieces of one update and, once done is closed, its outcome.
type pieceGroup struct {
	key    string
	pieces []schemas.WindowPiece
	index  map[string]int // piece id -> position in pieces
	done   chan struct{}
	late   []int // late partials per piece
	err    error
}

// NewPieceSender builds the sender of a window pipeline's pieces; Close stops it.
func NewPieceSender(router *Window) *PieceSender {
	ctx, cancel := context.WithCancel(context.Background())
	return &PieceSender{router: router, ctx: ctx, cancel: cancel, waiting: map[string]*pieceGroup{}, sending: map[string]bool{}}
}

// Updates counts the updates the pipeline's router sent.
func (s *PieceSender) Updates() int64 { return s.router.Updates() }

// SendPieces hands a key's pieces to its window workflow and returns how many of their
// partials came for windows already closed (those pieces are recorded as late).
func (s *PieceSender) SendPieces(ctx context.Context, key string, pieces []schemas.WindowPiece) (int, error) {
	g, mine, err := s.join(key, pieces)
	if err != nil {
		return 0, err
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if g.err != nil {
		return 0, g.err
	}
	late := 0
	for _, i := range mine {
		late += g.late[i]
	}
	return late, nil
}

// join adds pieces to the waiting group of their workflow, starting its sender when none
// runs, and returns the group and the positions of the pieces in it.
func (s *PieceSender) join(key string, pieces []schemas.WindowPiece) (*pieceGroup, []int, error) {
	workflowID := s.router.workflowID(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, nil, ErrSenderClosed
	}
	g := s.waiting[workflowID]
	if g == nil {
		g = &pieceGroup{key: key, index: map[string]int{}, done: make(chan struct{})}
		s.waiting[workflowID] = g
	}
	mine := make([]int, 0, len(pieces))
	for _, p := range pieces {
		id := p.Range.TopicPartition() + "@" + strconv.FormatInt(p.Range.From, 10)
		i, ok := g.index[id]
		if !ok {
			i = len(g.pieces)
			g.index[id] = i
			g.pieces = append(g.pieces, p)
		}
		mine = append(mine, i)
	}
	if !s.sending[workflowID] {
		s.sending[workflowID] = true
		s.wg.Add(1)
		go s.drain(workflowID)
	}
	return g, mine, nil
}

// Close cancels the updates in flight (their callers get the error, and their activities
// retry) and waits for the senders to end.
func (s *PieceSender) Close() {
	s.cancel()
	s.wg.Wait()
}

// drain sends a workflow's waiting groups one after another until none is left.
func (s *PieceSender) drain(workflowID string) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		g := s.waiting[workflowID]
		if g == nil {
			delete(s.sending, workflowID)
			s.mu.Unlock()
			return
		}
		delete(s.waiting, workflowID)
		s.mu.Unlock()
		g.late = make([]int, 0, len(g.pieces))
		for chunk := range slices.Chunk(g.pieces, maxPiecesPerUpdate) {
			ctx, cancel := context.WithTimeout(s.ctx, pieceUpdateTimeout)
			late, err := s.send(ctx, workflowID, g.key, chunk)
			cancel()
			if err != nil {
				g.err = err
				break
			}
			g.late = append(g.late, late...)
		}
		close(g.done)
	}
}

// send sends pieces in one update, rebuilt without the pieces the workflow says it applied
// when it turns the batch away, and returns the late partials of each piece.
func (s *PieceSender) send(ctx context.Context, workflowID, key string, pieces []schemas.WindowPiece) ([]int, error) {
	left := make([]int, len(pieces)) // indices of the pieces still to send
	for i := range pieces {
		left[i] = i
	}
	var owner []int // the piece of each partial of the batch sent
	ack, sent, err := s.router.updatePastApplied(ctx, workflowID, func(applied map[string]int64, _ []schemas.LateSpan) (schemas.WindowBatch, bool) {
		if applied != nil {
			rest := left[:0:0]
			for _, i := range left {
				if a, ok := applied[pieces[i].Range.TopicPartition()]; !ok || pieces[i].Range.From > a {
					rest = append(rest, i)
				}
			}
			left = rest
		}
		var b schemas.WindowBatch
		owner = owner[:0]
		for _, i := range left {
			b.Ranges = append(b.Ranges, pieces[i].Range)
			b.Partials = append(b.Partials, pieces[i].Partials...)
			for range pieces[i].Partials {
				owner = append(owner, i)
			}
		}
		return b, len(left) > 0
	})
	if err != nil {
		return nil, err
	}
	late := make([]int, len(pieces))
	if !sent {
		return late, nil
	}
	for _, p := range ack.Late {
		late[owner[p]]++
	}
	return late, s.recordLate(ctx, key, pieces, late)
}

// recordLate records each piece with a late partial, keyed by its range.
func (s *PieceSender) recordLate(ctx context.Context, key string, pieces []schemas.WindowPiece, late []int) error {
	var rows []schemas.LateRecord
	var copies []*kafka.Message
	now := time.Now().UTC()
	pipeline := s.router.spec.Name
	for i, n := range late {
		if n == 0 {
			continue
		}
		r := pieces[i].Range
		if len(pieces[i].Partials) > 0 {
			key = pieces[i].Partials[0].Key // a sharded workflow's group mixes keys
		}
		rows = append(rows, schemas.LateRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.From, Pipeline: pipeline, Key: key, Reason: reasonWindowClosed, At: now})
		b, err := json.Marshal(pieces[i])
		if err != nil {
			return err
		}
		copies = append(copies, kafkaio.Message(schemas.LateTopic(pipeline), []byte(key), b,
			kafka.Header{Key: kafkaio.HeaderReason, Value: []byte(reasonWindowClosed)}))
	}
	return recordLate(ctx, s.router.db, rows, copies)
}
