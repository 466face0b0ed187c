package api_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/testenv"
)

// The likes control starts a simulation that sends to the broker at the rate asked,
// answers its status, and stops; bad settings get a 400 saying why.
func TestLikesControl(t *testing.T) {
	f := newFixture(t)
	type status struct {
		Running bool
		Sent    int64
		Setting struct {
			PerMinute float64 `json:"likes_per_minute"`
			Videos    int
		}
	}
	var st status
	if code := f.do(t, "POST", "/api/simulations/likes", `{"likes_per_minute": 600, "videos": 4}`, &st); code != 202 || !st.Running || st.Setting.Videos != 4 {
		t.Fatalf("start: %d %+v", code, st)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.Sent < 40 { // 40 likes a second
		if time.Now().After(deadline) {
			t.Fatalf("sent %d likes in 30 s", st.Sent)
		}
		time.Sleep(testenv.Poll)
		f.do(t, "GET", "/api/simulations/likes", "", &st)
	}
	n := 0
	for v := range 4 {
		n += countLikes(t, f.bootstrap, "video-"+strconv.Itoa(v))
	}
	if n < int(st.Sent) {
		t.Errorf("the topic holds %d likes, the control says %d sent", n, st.Sent)
	}
	if code := f.do(t, "DELETE", "/api/simulations/likes", "", &st); code != 200 || st.Running {
		t.Fatalf("stop: %d %+v", code, st)
	}
	stopped := st.Sent
	f.do(t, "GET", "/api/simulations/likes", "", &st)
	if st.Sent != stopped || st.Running {
		t.Errorf("after stop: %+v, sent %d at the stop", st, stopped)
	}
	var e errBody
	for _, body := range []string{``, `{}`, `{"likes_per_minute": 0, "videos": 1}`, `{"likes_per_minute": 10, "videos": 0}`,
		`{"likes_per_minute": 100000, "videos": 10}`, `{"likes_per_minute": 1, "videos": 1, "extra": 1}`, `not json`} {
		if code := f.do(t, "POST", "/api/simulations/likes", body, &e); code != 400 || e.Error == "" {
			t.Errorf("POST %q: %d %q", body, code, e.Error)
		}
	}
	if !strings.Contains(e.Error, "body") {
		t.Errorf("a body that is not JSON: %q", e.Error)
	}
}
