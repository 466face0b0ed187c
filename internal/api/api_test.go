package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/api"
	"github.com/tributary-dev/tributary/internal/db"
	"github.com/tributary-dev/tributary/internal/embedded"
	"github.com/tributary-dev/tributary/internal/kafkaio"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
)

type errBody struct {
	Error string `json:"error"`
}

// fixture is an API server on a real SQLite database and a real (in-process) broker.
type fixture struct {
	srv       *httptest.Server
	db        *gorm.DB
	bootstrap string
	now       time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := testenv.Logger(t)
	g, err := db.Open(filepath.Join(t.TempDir(), "api.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	b, err := embedded.StartBroker(embedded.BrokerOptions{Port: port, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	bootstrap := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopics(ctx, bootstrap, 2, schemas.TopicLikes); err != nil {
		t.Fatal(err)
	}
	p, err := kafkaio.NewProducer(bootstrap, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	now := time.Now().UTC().Truncate(time.Minute)
	s := &api.Server{DB: g, Producer: p, Log: log, Poll: 100 * time.Millisecond, Namespace: "default", TemporalUI: "http://ui.test"}
	f := &fixture{srv: httptest.NewServer(s.Handler()), db: g, bootstrap: bootstrap, now: now}
	t.Cleanup(f.srv.Close)
	f.seed(t)
	return f
}

// seed stores the last ten minutes of two sensors: cars at s1 every minute, bikes at s2
// in even minutes, and one closed likes window.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	var rows []schemas.WindowResult
	var visits []schemas.Visit
	for i := range 10 {
		at := f.now.Add(time.Duration(i-10) * time.Minute)
		add := func(sensor, typ string, count int64, speed float64) {
			rows = append(rows, schemas.WindowResult{Pipeline: schemas.PipelineSensors, Key: schemas.SensorKey(sensor, typ), SizeSeconds: 60,
				WindowStart: at, Count: count, Sum: speed * float64(count), Min: speed - 1, Max: speed + 1, Avg: speed,
				FirstAt: at, LastAt: at, ClosedAt: at.Add(2 * time.Minute), Writer: "seed"})
			for k := range count {
				visits = append(visits, schemas.Visit{TravelerID: fmt.Sprintf("%s-%d-%d", typ, i, k), SensorID: sensor, Type: typ,
					Entered: at.Add(10 * time.Second), Left: at.Add(40 * time.Second), Readings: 10, AvgSpeed: speed, Writer: "seed", StoredAt: at})
			}
		}
		add("s1", "car", int64(1+i%3), 15)
		if i%2 == 0 {
			add("s2", "bike", 1, 5)
		}
	}
	rows = append(rows, schemas.WindowResult{Pipeline: schemas.PipelineLikes, Key: "video-seed", SizeSeconds: 60, WindowStart: f.now.Add(-2 * time.Minute),
		Count: 7, Sum: 7, Min: 1, Max: 1, Avg: 1, ClosedAt: f.now.Add(-50 * time.Second), Writer: "seed"})
	if err := f.db.Create(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.db.Create(&visits).Error; err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) do(t *testing.T, method, path, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(path, "/api") && ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFixture(t)
	var m struct {
		Points []struct {
			Travelers int     `json:"travelers"`
			Measured  int64   `json:"measured"`
			Avg       float64 `json:"avg_speed"`
			Max       float64 `json:"max_speed"`
		} `json:"points"`
	}
	from := f.now.Add(-10 * time.Minute).Format(time.RFC3339)
	to := f.now.Format(time.RFC3339)
	if code := f.do(t, "GET", "/api/sensors/metrics?from="+from+"&to="+to, "", &m); code != 200 || len(m.Points) != 10 {
		t.Fatalf("status %d, %d points", code, len(m.Points))
	}
	// Minute 0: 1 car at 15 and 1 bike at 5.
	if p := m.Points[0]; p.Travelers != 2 || p.Measured != 2 || p.Avg != 10 || p.Max != 16 {
		t.Errorf("minute 0: %+v", p)
	}
	if code := f.do(t, "GET", "/api/sensors/metrics?sensor=s2&type=bike&step=5m&from="+from+"&to="+to, "", &m); code != 200 || len(m.Points) != 2 || m.Points[0].Travelers != 3 {
		t.Errorf("s2 bikes in 5-minute steps: %d %+v", code, m.Points)
	}
	// An hour back is zero-filled before the seed; a range off the minute covers the
	// minutes it touches (61 of them).
	if code := f.do(t, "GET", "/api/sensors/metrics?from=-1h&to=0s", "", &m); code != 200 || len(m.Points) < 60 || m.Points[0].Travelers != 0 || m.Points[0].Measured != 0 {
		t.Errorf("last hour: %d, %d points", code, len(m.Points))
	}
	var e errBody
	for _, q := range []string{"step=30s", "from=yesterday", "type=boat", "from=-1m&to=-2m", "window=1m&step=5m", "step=1m&from=-9000h"} {
		if code := f.do(t, "GET", "/api/sensors/metrics?"+q, "", &e); code != 400 || e.Error == "" {
			t.Errorf("%s: status %d, error %q", q, code, e.Error)
		}
	}
}

func TestListsAndErrors(t *testing.T) {
	f := newFixture(t)
	var s struct{ Sensors, Types []string }
	if code := f.do(t, "GET", "/api/sensors", "", &s); code != 200 || len(s.Sensors) != 2 || len(s.Types) != 4 {
		t.Errorf("sensors: %d %+v", code, s)
	}
	var v struct {
		Visits []struct {
			SensorID string `json:"sensor_id"`
		} `json:"visits"`
	}
	if code := f.do(t, "GET", "/api/visits?traveler=car-9-0", "", &v); code != 200 || len(v.Visits) != 1 || v.Visits[0].SensorID != "s1" {
		t.Errorf("visits: %d %+v", code, v)
	}
	var w struct {
		Windows []struct {
			Count int64 `json:"count"`
		} `json:"windows"`
	}
	if code := f.do(t, "GET", "/api/windows?pipeline=likes&size=60", "", &w); code != 200 || len(w.Windows) != 1 || w.Windows[0].Count != 7 {
		t.Errorf("windows: %d %+v", code, w)
	}
	var e errBody
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/visits?limit=-1", ""},
		{"GET", "/api/windows?size=big", ""},
		{"GET", "/api/travelers/a%7Cb/current", ""},
		{"POST", "/videos/v1/likes", `{"count": 0}`},
		{"POST", "/videos/v1/likes", `{"count": 5000}`},
		{"POST", "/videos/v1/likes", `{"cnt": 1}`},
		{"POST", "/videos/v1/likes", `not json`},
		{"POST", "/videos/a%7Cb/likes", ``},
		{"GET", "/api/windows/open", ""},
		{"GET", "/api/windows/open?pipeline=nope&key=v1", ""},
		{"GET", "/api/windows/open?pipeline=likes&key=a%2Fb", ""},
		{"GET", "/api/windows/open?pipeline=likes&key=" + strings.Repeat("k", 300), ""},
	} {
		if code := f.do(t, c.method, c.path, c.body, &e); code != 400 || e.Error == "" {
			t.Errorf("%s %s %s: status %d, error %q", c.method, c.path, c.body, code, e.Error)
		}
	}
	if code := f.do(t, "GET", "/api/nothing", "", &e); code != 404 || !strings.Contains(e.Error, "/api/nothing") {
		t.Errorf("unknown endpoint: %d %q", code, e.Error)
	}
	if code := f.do(t, "GET", "/api/travelers/t1/current", "", &e); code != 503 {
		t.Errorf("current without Temporal: %d", code)
	}
	if code := f.do(t, "GET", "/api/windows/open?pipeline=likes&key=v1", "", &e); code != 503 || e.Error == "" {
		t.Errorf("open windows without Temporal: %d %q", code, e.Error)
	}
}

func TestLikesIngest(t *testing.T) {
	f := newFixture(t)
	var res struct {
		VideoID  string `json:"video_id"`
		Accepted int    `json:"accepted"`
	}
	if code := f.do(t, "POST", "/videos/video-9/likes", "", &res); code != 202 || res.Accepted != 1 {
		t.Fatalf("one like: %d %+v", code, res)
	}
	if code := f.do(t, "POST", "/videos/video-9/likes", `{"count": 4}`, &res); code != 202 || res.Accepted != 4 {
		t.Fatalf("four likes: %d %+v", code, res)
	}
	if got := countLikes(t, f.bootstrap, "video-9"); got != 5 {
		t.Errorf("%d likes on the topic, want 5", got)
	}
}

// countLikes reads the likes topic and counts one video's likes, checking each record.
func countLikes(t *testing.T, bootstrap, video string) int {
	t.Helper()
	got := 0
	err := kafkaio.ReadTopic(context.Background(), bootstrap, schemas.TopicLikes, func(m *kafka.Message) error {
		var l schemas.Like
		if err := json.Unmarshal(m.Value, &l); err != nil {
			return err
		}
		if l.VideoID != video {
			return nil
		}
		if string(m.Key) != video || l.Version != schemas.RecordVersion || l.At.IsZero() {
			return fmt.Errorf("record %s", m.Value)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLiveFeed(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/api/events?pipeline=likes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		var acc strings.Builder
		for {
			n, err := resp.Body.Read(buf)
			acc.WriteString(string(buf[:n]))
			for {
				s := acc.String()
				i := strings.Index(s, "\n\n")
				if i < 0 {
					break
				}
				if strings.Contains("\n"+s[:i], "\nevent: window") {
					events <- s[:i]
				}
				acc.Reset()
				acc.WriteString(s[i+2:])
			}
			if err != nil {
				close(events)
				return
			}
		}
	}()
	closed := time.Now().UTC()
	row := schemas.WindowResult{Pipeline: schemas.PipelineLikes, Key: "video-live", SizeSeconds: 60, WindowStart: f.now, Count: 3, Sum: 3, Min: 1, Max: 1, Avg: 1, ClosedAt: closed, Writer: "w"}
	other := row
	other.Pipeline, other.Key = schemas.PipelineSensors, "s1|car"
	if err := f.db.Create([]schemas.WindowResult{row, other}).Error; err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if !strings.Contains(ev, `"key":"video-live"`) || !strings.Contains(ev, `"count":3`) {
			t.Errorf("event %q", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no window event within 10 s of the row closing")
	}
	select {
	case ev := <-events:
		t.Errorf("a second event (the sensors row is filtered out, the likes row sent once): %q", ev)
	case <-time.After(500 * time.Millisecond):
	}
}

// Acks come as they are stored, with their delay; a client reconnecting with the last id
// it saw gets what was acked while it was away, and the feed's 4xx say what is wrong.
func TestLiveFeedAcksAndResume(t *testing.T) {
	f := newFixture(t)
	ack := func(id string, storedAt time.Time) schemas.JoinedEvent {
		return schemas.JoinedEvent{EventID: id, Status: schemas.JoinComplete, Topics: "topic1,topic2,topic3",
			FirstAt: storedAt.Add(-40 * time.Millisecond), LastAt: storedAt.Add(-25 * time.Millisecond), Writer: "w", StoredAt: storedAt}
	}
	events := testenv.Stream(t, f.srv.URL+"/api/events?pipeline=join", "")
	// Stored after the stream answered, so after the moment it started from.
	t0 := time.Now().UTC()
	if err := f.db.Create(ack("e1", t0)).Error; err != nil {
		t.Fatal(err)
	}
	first := testenv.Next(t, events, "ack", 10*time.Second, nil)
	var v struct {
		EventID string   `json:"event_id"`
		Status  string   `json:"status"`
		Topics  []string `json:"topics"`
		DelayMs float64  `json:"delay_ms"`
	}
	if err := json.Unmarshal([]byte(first.Data), &v); err != nil || v.EventID != "e1" || v.Status != schemas.JoinComplete || len(v.Topics) != 3 || v.DelayMs != 25 {
		t.Fatalf("ack event %+v (%v)", first, err)
	}
	if first.ID == "" {
		t.Fatal("an ack event without an id cannot be resumed from")
	}
	// Away: two more acks are stored; back with the last id seen, both come.
	if err := f.db.Create([]schemas.JoinedEvent{ack("e2", t0.Add(time.Millisecond)), ack("e3", t0.Add(2*time.Millisecond))}).Error; err != nil {
		t.Fatal(err)
	}
	resumed := testenv.Stream(t, f.srv.URL+"/api/events?pipeline=join", first.ID)
	got := map[string]bool{}
	for len(got) < 2 {
		ev := testenv.Next(t, resumed, "ack", 10*time.Second, nil)
		_ = json.Unmarshal([]byte(ev.Data), &v)
		if v.EventID != "e1" {
			got[v.EventID] = true
		}
	}
	// A fresh client without an id starts from now: it does not get the old acks.
	fresh := testenv.Stream(t, f.srv.URL+"/api/events?pipeline=join", "")
	if err := f.db.Create(ack("e4", time.Now().UTC())).Error; err != nil {
		t.Fatal(err)
	}
	if ev := testenv.Next(t, fresh, "ack", 10*time.Second, nil); !strings.Contains(ev.Data, `"e4"`) {
		t.Errorf("a new client's first ack is %s", ev.Data)
	}
	var e errBody
	for _, path := range []string{
		"/api/events?pipeline=nope",
		"/api/events?watch=v1",
		"/api/events?pipeline=likes&watch=" + strings.Repeat("v,", api.MaxWatch) + "v",
		"/api/events?pipeline=likes&watch=a%7Cb",
	} {
		if code := f.do(t, "GET", path, "", &e); code != 400 || e.Error == "" {
			t.Errorf("GET %s: %d %q", path, code, e.Error)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/api/events", nil)
	req.Header.Set("Last-Event-ID", "yesterday")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("a Last-Event-ID that is no id: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}
