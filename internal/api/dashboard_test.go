package api_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-dev/tributary/schemas"
)

// browser starts headless Chromium (Debian's package; `make deps` installs it) with the
// flags this closed network needs, and returns a tab context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH (make deps installs Debian's chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// TestDashboardInABrowser loads the dashboard in Chromium against a real database and
// broker: the charts draw the API's numbers, a filter redraws them, the Like button
// ingests likes, and a window closing reaches the page over the live feed.
func TestDashboardInABrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)

	var bars int
	var first string
	err := chromedp.Run(ctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(`#chart-travelers rect.bar`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#chart-travelers rect.bar").length`, &bars),
		chromedp.WaitVisible(`#chart-speed path.avg`, chromedp.ByQuery),
		chromedp.WaitVisible(`#feed[data-state="live"]`, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("dashboard did not draw: %v", err)
	}
	if bars < 60 {
		t.Errorf("%d travelers bars for the last hour, want one a minute", bars)
	}
	// The bars of the seeded minutes carry the API's numbers: 2, 2, 3, 2, ... travelers.
	var values []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll("#chart-travelers rect.bar")].map(r => r.dataset.value).filter(v => v !== "0")`, &values)); err != nil {
		t.Fatal(err)
	}
	want := []string{"2", "2", "4", "1", "3", "3", "2", "2", "4", "1"}
	if len(values) != len(want) {
		t.Fatalf("non-empty bars %v, want %v", values, want)
	}
	for i := range want {
		if values[i] != want[i] {
			t.Errorf("bar %d = %s, want %s (all %v)", i, values[i], want[i], values)
		}
	}

	// Filter to bikes: only even minutes have one.
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#type`, "bike", chromedp.ByQuery),
		chromedp.Click(`#metrics-form button`, chromedp.ByQuery),
		chromedp.Poll(`[...document.querySelectorAll("#chart-travelers rect.bar")].filter(r => r.dataset.value !== "0").length === 5`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll("#chart-travelers rect.bar")[0].dataset.value`, &first),
	)
	if err != nil {
		t.Fatalf("the bike filter did not redraw: %v", err)
	}

	// Like a video three times from the page.
	var status string
	err = chromedp.Run(ctx,
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
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("TRIBUTARY_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("screenshot %s bytes", strconv.Itoa(len(png)))
}
