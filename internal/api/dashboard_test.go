package api_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
)

// TestDashboardInABrowser loads the dashboard in Chromium against a real database and
// broker: the charts draw the API's numbers, a filter redraws them, the Like button
// ingests likes, and a window closing reaches the page over the live feed.
func TestDashboardInABrowser(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Browser(t)

	var values []int
	err := chromedp.Run(ctx,
		chromedp.Navigate(f.srv.URL+"/#sensors"),
		chromedp.Poll(`document.querySelector("#chart-travelers").dataset.values !== undefined && document.querySelector("#chart-speed").dataset.measured > 0`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.WaitVisible(`#chart-travelers canvas`, chromedp.ByQuery),
		chromedp.Evaluate(`JSON.parse(document.querySelector("#chart-travelers").dataset.values)`, &values),
		chromedp.WaitVisible(`#feed[data-state="live"]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("dashboard did not draw: %v", err)
	}
	if len(values) < 60 {
		t.Errorf("%d travelers points for the last hour, want one a minute", len(values))
	}
	// The points of the seeded minutes carry the API's numbers: 2, 2, 4, 1, ... travelers.
	var nonzero []int
	for _, v := range values {
		if v != 0 {
			nonzero = append(nonzero, v)
		}
	}
	want := []int{2, 2, 4, 1, 3, 3, 2, 2, 4, 1}
	if len(nonzero) != len(want) {
		t.Fatalf("non-empty points %v, want %v", nonzero, want)
	}
	for i := range want {
		if nonzero[i] != want[i] {
			t.Errorf("point %d = %d, want %d (all %v)", i, nonzero[i], want[i], nonzero)
		}
	}

	// Filter to bikes: only even minutes have one.
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#type`, "bike", chromedp.ByQuery),
		chromedp.Click(`#metrics-form button`, chromedp.ByQuery),
		chromedp.Poll(`JSON.parse(document.querySelector("#chart-travelers").dataset.values).filter(v => v !== 0).length === 5`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("the bike filter did not redraw: %v", err)
	}

	testenv.Screenshot(t, ctx, "api-sensors")

	// Like a video three times from the page.
	var status string
	err = chromedp.Run(ctx,
		chromedp.Click(`#tabs a[href="#likes"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#like-button`, chromedp.ByQuery),
		chromedp.SetValue(`#video`, "video-browser", chromedp.ByQuery),
		chromedp.SetValue(`#like-count`, "3", chromedp.ByQuery),
		chromedp.Click(`#like-button`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#like-status").textContent.startsWith("sent 3 likes")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text(`#like-status`, &status, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("like: %v (status %q)", err, status)
	}
	if n := countLikes(t, f.bootstrap, "video-browser"); n != 3 {
		t.Errorf("%d likes of video-browser on the topic, want 3", n)
	}

	// A likes window closes: the page shows it without a reload.
	row := schemas.WindowResult{Pipeline: schemas.PipelineLikes, Key: "video-browser", SizeSeconds: 60, WindowStart: f.now,
		Count: 3, Sum: 3, Min: 1, Max: 1, Avg: 1, ClosedAt: time.Now().UTC(), Writer: "w"}
	if err := f.db.Create(&row).Error; err != nil {
		t.Fatal(err)
	}
	var count string
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#like-windows tr[data-key="video-browser"]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#like-windows tr[data-key="video-browser"]`, "data-count", &count, nil, chromedp.ByQuery),
		chromedp.WaitVisible(`#chart-likes rect.bar[data-label="video-browser"]`, chromedp.ByQuery),
	)
	if err != nil || count != "3" {
		t.Fatalf("live window: %v, count %q", err, count)
	}
	// The 1-minute board shows the closed window; the likes control sends likes and stops.
	err = chromedp.Run(ctx,
		chromedp.WaitVisible(`#board-60 tr[data-key="video-browser"][data-count="3"]`, chromedp.ByQuery),
		chromedp.SetValue(`#sim-rate`, "600", chromedp.ByQuery),
		chromedp.SetValue(`#sim-videos`, "2", chromedp.ByQuery),
		chromedp.Click(`#sim-start`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#sim-status").dataset.running === "true"`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		// The status refreshes every 2 s: the count it shows rises without a reload.
		chromedp.Poll(`(/; (\d+) sent/.exec(document.querySelector("#sim-status").textContent) || [0, 0])[1] > 20`, nil, chromedp.WithPollingTimeout(20*time.Second)),
	)
	if err != nil {
		t.Fatalf("likes control: %v", err)
	}
	testenv.Screenshot(t, ctx, "api-likes")
	if err := chromedp.Run(ctx, chromedp.Click(`#sim-stop`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#sim-status").dataset.running === "false"`, nil, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := countLikes(t, f.bootstrap, "video-0") + countLikes(t, f.bootstrap, "video-1"); n < 20 {
		t.Errorf("the control sent %d likes to the topic", n)
	}

	// The join view: the counters are the API's, the histogram holds every ack, a lookup
	// links the workflow, and an ack made now reaches the table over the live feed.
	seedJoin(t, f)
	var api struct {
		Complete, Incomplete int64
		Delay                struct{ Count int }
	}
	f.do(t, "GET", "/api/join/summary?minutes=15", "", &api)
	var complete, incomplete, histogram, link string
	err = chromedp.Run(ctx,
		chromedp.Click(`#tabs a[href="#join"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#join-counters`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#join-counters [data-k="complete"]').textContent !== "–" && document.querySelector("#chart-delay").dataset.count > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text(`#join-counters [data-k="complete"]`, &complete, chromedp.ByQuery),
		chromedp.Text(`#join-counters [data-k="incomplete"]`, &incomplete, chromedp.ByQuery),
		chromedp.AttributeValue(`#chart-delay`, "data-count", &histogram, nil, chromedp.ByQuery),
		chromedp.SetValue(`#event-id`, "web-1", chromedp.ByQuery),
		chromedp.Click(`#event-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#event-workflow`, chromedp.ByQuery),
		chromedp.AttributeValue(`#event-workflow`, "href", &link, nil, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("join view: %v", err)
	}
	if complete != strconv.FormatInt(api.Complete, 10) || incomplete != strconv.FormatInt(api.Incomplete, 10) || histogram != strconv.Itoa(api.Delay.Count) {
		t.Errorf("join view shows %s complete, %s incomplete, %s delays; the API %+v", complete, incomplete, histogram, api)
	}
	if link != "http://ui.test/namespaces/default/workflows/join/web-1" && !strings.HasPrefix(link, "http://ui.test/namespaces/default/workflows/") {
		t.Errorf("workflow link %q", link)
	}
	live := schemas.JoinedEvent{EventID: "web-live", Status: schemas.JoinComplete, Topics: "topic1,topic2,topic3", FirstAt: time.Now().UTC(),
		LastAt: time.Now().UTC(), Writer: "w", StoredAt: time.Now().UTC().Add(10 * time.Millisecond)}
	if err := f.db.Create(&live).Error; err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#acks tr[data-event="web-live"]`, chromedp.ByQuery)); err != nil {
		t.Fatalf("an ack did not reach the page: %v", err)
	}
	testenv.Screenshot(t, ctx, "api-join")

	// The transactions view charts the closed windows, and a window closing adds a point.
	var tx []schemas.WindowResult
	start := time.Now().UTC().Truncate(3 * time.Second).Add(-time.Minute)
	for i := range 10 {
		tx = append(tx, schemas.WindowResult{Pipeline: schemas.PipelineTransactions, Key: "all", SizeSeconds: 3, WindowStart: start.Add(time.Duration(3*i) * time.Second),
			Count: int64(10 + i), Sum: float64(100 * (i + 1)), Avg: 10, ClosedAt: time.Now().UTC().Add(-time.Hour), Writer: "w"})
	}
	if err := f.db.Create(tx).Error; err != nil {
		t.Fatal(err)
	}
	err = chromedp.Run(ctx,
		chromedp.Navigate(f.srv.URL+"/#transactions"),
		chromedp.Poll(`document.querySelector("#chart-tx").dataset.points == 10`, nil, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("transactions chart: %v", err)
	}
	next := tx[9]
	next.WindowStart, next.ClosedAt = next.WindowStart.Add(3*time.Second), time.Now().UTC()
	if err := f.db.Create(&next).Error; err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Poll(`document.querySelector("#chart-tx").dataset.points == 11`, nil, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("a closed window did not reach the chart: %v", err)
	}
	testenv.Screenshot(t, ctx, "api-transactions")

	// At phone width nothing runs off the side.
	var wide bool
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(f.srv.URL+"/#join"),
		chromedp.WaitVisible(`#join-counters`, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth > 400`, &wide)); err != nil {
		t.Fatal(err)
	}
	if wide {
		t.Error("the join view is wider than a phone")
	}
	testenv.Screenshot(t, ctx, "api-join-phone")
}

// seedJoin stores a few acked events, one of them web-1.
func seedJoin(t *testing.T, f *fixture) {
	t.Helper()
	now := time.Now().UTC()
	var evs []schemas.JoinedEvent
	for i := range 6 {
		status := schemas.JoinComplete
		if i == 5 {
			status = schemas.JoinIncomplete
		}
		evs = append(evs, schemas.JoinedEvent{EventID: "web-" + strconv.Itoa(i), Status: status, Topics: "topic1,topic2,topic3",
			FirstAt: now.Add(-2 * time.Minute), LastAt: now.Add(-time.Minute - time.Duration(10*(i+1))*time.Millisecond), Writer: "w", StoredAt: now.Add(-time.Minute)})
	}
	if err := f.db.Create(evs).Error; err != nil {
		t.Fatal(err)
	}
}
