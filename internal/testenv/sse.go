package testenv

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one server-sent event.
type Event struct{ ID, Event, Data string }

// Stream opens a server-sent event stream at url, with a Last-Event-ID when lastID is set,
// and delivers its events until the test ends.
func Stream(t testing.TB, url, lastID string) <-chan Event {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := make(chan Event, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var ev Event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					out <- ev
				}
				ev = Event{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return out
}

// Next returns the next event of a kind that satisfies keep (any when nil), failing after
// within.
func Next(t testing.TB, events <-chan Event, kind string, within time.Duration, keep func(Event) bool) Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before a %s event", kind)
			}
			if ev.Event == kind && (keep == nil || keep(ev)) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", kind, within)
		}
	}
}
