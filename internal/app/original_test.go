package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
)

// TestOriginalProducersRows sends sim_file1..3 the way the original simulator's producer
// does: each row as pandas' row.to_json() writes it (flat, the id a float such as 102.0,
// NA as null, no version and no creation time), without a key, from a plain librdkafka
// producer with its defaults. Every event id must be acked once under str(int(id)), complete
// exactly when all three files hold it, and every row stored with the values it was sent
// with. The original files are used when ../shared has them, the shipped samples otherwise.
func TestOriginalProducersRows(t *testing.T) {
	dir := filepath.Join("..", "..", "samples", "join")
	if orig := filepath.Join("..", "..", "..", "shared", "seeds", "genetika-data"); dirExists(orig) {
		dir = orig
	} else {
		t.Log("the original sim_file1..3 are not beside the project; sending the samples")
	}
	files, err := joinsim.LoadFiles(dir)
	require.NoError(t, err)

	cfg := testenv.Config(t)
	cfg.Join.Deadline = 3 * time.Second
	env := testenv.Start(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": cfg.KafkaBootstrap})
	require.NoError(t, err)
	reports := make(chan error, 1)
	go func() { // the delivery reports, as the original's callback read them
		var failed error
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil && failed == nil {
				failed = m.TopicPartition.Error
			}
		}
		reports <- failed
	}()
	inFiles := map[string]int{} // event id -> how many files hold it
	sent := 0
	for i, topic := range schemas.JoinTopics {
		for _, row := range files.Rows[i] {
			topic := topic
			v := pandasRow(t, row)
			require.NoError(t, p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: v}, nil))
			inFiles[row.ID]++
			sent++
		}
	}
	for p.Flush(100) > 0 && p.Len() > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d records unsent", p.Len())
		default:
		}
	}
	p.Close()
	require.NoError(t, <-reports, "a row the broker refused")
	t.Logf("sent %d rows of %d event ids from %v", sent, len(inFiles), files.Paths)

	var acks map[string][]schemas.Ack
	require.Eventually(t, func() bool {
		acks = map[string][]schemas.Ack{}
		err := kafkaio.ReadTopic(ctx, cfg.KafkaBootstrap, schemas.TopicAck, func(m *kafka.Message) error {
			var a schemas.Ack
			if err := json.Unmarshal(m.Value, &a); err != nil {
				return fmt.Errorf("ack %s: %w", m.TopicPartition, err)
			}
			acks[a.EventID] = append(acks[a.EventID], a)
			return nil
		})
		return err == nil && len(acks) >= len(inFiles)
	}, 2*time.Minute, testenv.Poll, "an ack for every event id")

	for id, n := range inFiles {
		got := acks[id]
		if len(got) != 1 {
			t.Errorf("event %s: %d acks, want 1", id, len(got))
			continue
		}
		want := schemas.JoinIncomplete
		if n == len(schemas.JoinTopics) {
			want = schemas.JoinComplete
		}
		if got[0].Status != want || len(got[0].Arrivals) != n {
			t.Errorf("event %s in %d files: ack %s with %d arrivals, want %s", id, n, got[0].Status, len(got[0].Arrivals), want)
		}
	}
	if len(acks) != len(inFiles) {
		t.Errorf("%d event ids acked, %d sent", len(acks), len(inFiles))
	}

	// Each row is stored in its topic's table with the values it carried, NA as null.
	for i, topic := range schemas.JoinTopics {
		var stored []schemas.DataRow
		require.NoError(t, env.Deps.DB.Table(schemas.JoinTables[topic]).Find(&stored).Error)
		byID := map[string]schemas.DataRow{}
		for _, r := range stored {
			byID[r.EventID] = r
		}
		require.Len(t, byID, len(files.Rows[i]), "rows stored for %s", topic)
		for _, row := range files.Rows[i] {
			r, ok := byID[row.ID]
			if !ok {
				t.Errorf("%s: row %s not stored", topic, row.ID)
				continue
			}
			if got, want := features(t, []byte(r.Fields)), features(t, row.Fields); !equalFeatures(got, want) {
				t.Errorf("%s: row %s stored %s, sent %s", topic, row.ID, r.Fields, row.Fields)
			}
			if r.CreatedAt.IsZero() || time.Since(r.CreatedAt) > 10*time.Minute {
				t.Errorf("%s: row %s created at %s, want the record's timestamp", topic, row.ID, r.CreatedAt)
			}
		}
	}
}

// pandasRow writes a file row as pandas' Series.to_json() does for the original's float
// columns: {"id":102.0,"feature1":0.0,"feature2":null,...}, in column order.
func pandasRow(t *testing.T, row joinsim.FileRow) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%s`, floatText(row.ID))
	dec := json.NewDecoder(bytes.NewReader(row.Fields))
	dec.UseNumber()
	_, err := dec.Token()
	require.NoError(t, err)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		v, err := dec.Token()
		require.NoError(t, err)
		name, _ := json.Marshal(k)
		switch v := v.(type) {
		case nil:
			fmt.Fprintf(&b, `,%s:null`, name)
		case json.Number:
			fmt.Fprintf(&b, `,%s:%s`, name, floatText(v.String()))
		default:
			t.Fatalf("row %s: feature %v is %T", row.ID, k, v)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// floatText spells a number as a float column prints it: 102 as 102.0.
func floatText(n string) string {
	if strings.ContainsAny(n, ".eE") {
		return n
	}
	return n + ".0"
}

// features reads a stored or sent feature object, null as nil.
func features(t *testing.T, raw []byte) map[string]*float64 {
	t.Helper()
	var out map[string]*float64
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func equalFeatures(a, b map[string]*float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || (va == nil) != (vb == nil) || (va != nil && *va != *vb) {
			return false
		}
	}
	return true
}
