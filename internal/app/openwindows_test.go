package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/testenv"
)

// TestOpenWindowsAnswerLive likes a video through the API and asks for its open windows:
// the workflow answers what it holds before any window closes, for each window size; a
// live feed watching the video sends each change as it happens.
func TestOpenWindowsAnswerLive(t *testing.T) {
	env := testenv.Start(t, testenv.Config(t))
	base := "http://" + env.Running.APIAddress
	feed := testenv.Stream(t, base+"/api/events?pipeline=likes&watch=clip-7", "")
	like := func(n int) {
		resp, err := http.Post(base+"/videos/clip-7/likes", "application/json", strings.NewReader(fmt.Sprintf(`{"count": %d}`, n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("like: %s", resp.Status)
		}
	}
	// minuteCount is the 1-minute window's count in an "open" event.
	minuteCount := func(ev testenv.Event) int64 {
		var body struct {
			Key     string
			Windows []struct {
				SizeSeconds int64 `json:"size_seconds"`
				Count       int64 `json:"count"`
			}
		}
		if err := json.Unmarshal([]byte(ev.Data), &body); err != nil || body.Key != "clip-7" {
			t.Fatalf("open event %s (%v)", ev.Data, err)
		}
		for _, w := range body.Windows {
			if w.SizeSeconds == 60 {
				return w.Count
			}
		}
		return 0
	}
	like(5)
	testenv.Next(t, feed, "open", time.Minute, func(ev testenv.Event) bool { return minuteCount(ev) == 5 })
	type open struct {
		SizeSeconds int64     `json:"size_seconds"`
		Count       int64     `json:"count"`
		Start       time.Time `json:"start"`
		End         time.Time `json:"end"`
		Open        bool      `json:"open"`
	}
	var got []open
	waitFor(t, time.Minute, "the likes in the open windows", func() bool {
		r, err := http.Get(base + "/api/windows/open?pipeline=likes&key=clip-7")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var body struct{ Windows []open }
		if r.StatusCode != http.StatusOK || json.NewDecoder(r.Body).Decode(&body) != nil {
			t.Fatalf("open windows: %s", r.Status)
		}
		got = body.Windows
		n := 0
		for _, w := range got {
			if w.Count == 5 || w.Count == 7 {
				n++
			}
		}
		return n == 3
	})
	sizes := map[int64]bool{}
	for _, w := range got {
		sizes[w.SizeSeconds] = true
		if !w.Open || w.End.Sub(w.Start) != time.Duration(w.SizeSeconds)*time.Second || time.Now().After(w.End.Add(time.Minute)) {
			t.Errorf("window %+v", w)
		}
	}
	if !sizes[60] || !sizes[300] || !sizes[600] {
		t.Errorf("sizes %v, want 1, 5 and 10 minutes", sizes)
	}
	// Two more likes: the feed sends the change without a reconnect.
	like(2)
	testenv.Next(t, feed, "open", time.Minute, func(ev testenv.Event) bool { return minuteCount(ev) == 7 })
	// A key nothing was sent for has nothing open.
	r, err := http.Get(base + "/api/windows/open?pipeline=likes&key=nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var none struct{ Windows []open }
	if err := json.NewDecoder(r.Body).Decode(&none); err != nil || r.StatusCode != 200 || len(none.Windows) != 0 {
		t.Errorf("unknown key: %s %+v %v", r.Status, none, err)
	}
}
