package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cleanMark is the file the broker leaves in its data directory when it stopped cleanly.
// Without it, the last run crashed and may have left transactions open.
const cleanMark = "tributary-clean-stop"

// A killed broker can leave a transaction open: its records are on disk, its commit or
// abort marker never was. kfake, reloading, counts such a transaction aborted but writes no
// marker for it, and read-committed consumers (librdkafka and franz-go alike) then skip
// every later record of that producer, waiting for a marker that never comes: after a kill
// of the stack with the outbox relay mid-transaction, the relay's next transactions were
// committed and still unreadable. A second crash was worse: reloading again, kfake took the
// old records for part of the next committed transaction, and they became readable twice.
//
// So after a crash, before any client connects, the broker runs once on a private port and
// aborts these hanging transactions the way Kafka's own tooling does (KIP-664:
// WriteTxnMarkers, as a transaction coordinator writes them): it reads every partition,
// finds each producer whose last transactional records no marker follows, and writes an
// abort marker for it there. Reading every partition costs about what kfake's own reload
// after a crash costs, which reads every segment too; a clean stop skips both.

// hanging is a transaction left open: its producer and the partitions holding its records.
type hanging struct {
	producer int64
	epoch    int16
	parts    map[string][]int32
}

// abortHanging reloads the data directory on a private port, writes an abort marker for
// each hanging transaction, and stops the broker cleanly again. It reports how many it
// aborted.
func abortHanging(ctx context.Context, opts BrokerOptions, log *slog.Logger) (int, error) {
	ports, err := FreePorts("127.0.0.1", 1)
	if err != nil {
		return 0, err
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(ports[0]), kfake.ClusterID(clusterID), kfake.DataDir(opts.DataDir))
	if err != nil {
		return 0, fmt.Errorf("reload the broker's data to look for open transactions: %w", err)
	}
	defer c.Close()
	// Every record, aborted or not, and the markers themselves.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.KeepControlRecords(), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	open, err := findHanging(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, h := range open {
		if err := writeAbort(ctx, cl, h); err != nil {
			return 0, err
		}
		log.Warn("kafka: aborted a transaction the last crash left open", "producer", h.producer, "partitions", h.parts)
	}
	return len(open), nil
}

// findHanging reads every partition to its end and returns the producers whose last
// transactional records no control marker follows.
func findHanging(ctx context.Context, cl *kgo.Client) ([]hanging, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	type key struct {
		topic     string
		partition int32
		producer  int64
	}
	openAt := map[key]int16{} // producer epoch of the open transaction
	want := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]bool{} // partitions not read to their end yet
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset <= 0 {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic], left[o.Topic] = map[int32]kgo.Offset{}, map[int32]bool{}
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		left[o.Topic][o.Partition] = true
	})
	cl.AddConsumePartitions(want)
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read partitions for open transactions: %w", err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("%s[%d]: %w", t, p, err)) })
		if ferr != nil {
			return nil, fmt.Errorf("read partitions for open transactions: %w", ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := key{r.Topic, r.Partition, r.ProducerID}
			switch {
			case r.Attrs.IsControl():
				delete(openAt, k)
			case r.Attrs.IsTransactional():
				openAt[k] = r.ProducerEpoch
			}
			if end, ok := ends.Lookup(r.Topic, r.Partition); ok && r.Offset+1 >= end.Offset {
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
		})
	}
	byProducer := map[int64]*hanging{}
	for k, epoch := range openAt {
		h := byProducer[k.producer]
		if h == nil {
			h = &hanging{producer: k.producer, epoch: epoch, parts: map[string][]int32{}}
			byProducer[k.producer] = h
		}
		h.epoch = max(h.epoch, epoch)
		h.parts[k.topic] = append(h.parts[k.topic], k.partition)
	}
	out := make([]hanging, 0, len(byProducer))
	for _, h := range byProducer {
		out = append(out, *h)
	}
	return out, nil
}

// writeAbort writes an abort marker for h in each of its partitions.
func writeAbort(ctx context.Context, cl *kgo.Client, h hanging) error {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = h.producer, h.epoch, false
	for topic, parts := range h.parts {
		t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		t.Topic, t.Partitions = topic, parts
		m.Topics = append(m.Topics, t)
	}
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("abort the open transaction of producer %d: %w", h.producer, err)
	}
	for _, rm := range resp.Markers {
		for _, t := range rm.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("abort the open transaction of producer %d in %s[%d]: %w", h.producer, t.Topic, p.Partition, err)
				}
			}
		}
	}
	return nil
}

// StoppedCleanly reports whether the broker that last used dir stopped cleanly (or none
// ever did).
func StoppedCleanly(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, cleanMark))
	return err == nil
}

// recoverIfCrashed aborts the transactions a crash left open, unless the last broker on
// the data directory stopped cleanly, and removes the clean-stop mark, so that a crash of
// this run is found next time.
func recoverIfCrashed(opts BrokerOptions, log *slog.Logger) error {
	if opts.DataDir == "" {
		return nil
	}
	if !StoppedCleanly(opts.DataDir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := abortHanging(ctx, opts, log); err != nil {
			return fmt.Errorf("recover the broker's data after a crash: %w", err)
		}
	}
	if err := os.Remove(filepath.Join(opts.DataDir, cleanMark)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("broker data: %w", err)
	}
	return nil
}
