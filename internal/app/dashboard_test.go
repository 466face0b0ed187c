package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/internal/txsim"
)

// TestDashboardOnTheStack opens every view of the dashboard against the embedded stack
// with traffic flowing: a join simulation, transactions, and likes from the page's own
// control. Each view shows the API's numbers, the likes boards count open windows as they
// rise without a reload, and an acked event's lookup links its workflow.
func TestDashboardOnTheStack(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Join.Shards = 4
	cfg.Join.Deadline = 3 * time.Second
	env := testenv.Start(t, cfg)
	base := "http://" + env.Running.APIAddress
	ctx := testenv.Browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/#likes"), chromedp.WaitVisible(`#feed[data-state="live"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}

	// Likes from the page's control: the 1-minute board shows open windows, counting up.
	err := chromedp.Run(ctx,
		chromedp.SetValue(`#sim-rate`, "120", chromedp.ByQuery),
		chromedp.SetValue(`#sim-videos`, "3", chromedp.ByQuery),
		chromedp.Click(`#sim-start`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#board-60 tr[data-open="true"]') !== null`, nil, chromedp.WithPollingTimeout(time.Minute)),
	)
	if err != nil {
		t.Fatalf("no open window on the board: %v", err)
	}
	var first, later int
	boardMax := `Math.max(0, ...[...document.querySelectorAll('#board-60 tr[data-open="true"]')].map(r => Number(r.dataset.count)))`
	if err := chromedp.Run(ctx, chromedp.Evaluate(boardMax, &first),
		chromedp.Poll(boardMax+` > `+strconv.Itoa(first), nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Evaluate(boardMax, &later)); err != nil {
		t.Fatalf("the open windows did not rise (from %d): %v", first, err)
	}
	testenv.Screenshot(t, ctx, "stack-likes")
	if err := chromedp.Run(ctx, chromedp.Click(`#sim-stop`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}

	// A join simulation and transactions while the page is open.
	plan := joinsim.Plan{RunID: "web", Events: 300, Seed: 9, MissingFraction: 0.05, DuplicateFraction: 0.03, MalformedFraction: 0.02}
	res := runSimulation(t, env, plan)
	tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := txsim.Produce(tctx, env.Deps.Producer, "web", 4, 3000, 1000, nil); err != nil {
		t.Fatal(err)
	}

	// The join view's counters are the API's, which hold the simulation's report.
	var api struct{ Complete, Incomplete int64 }
	waitFor(t, time.Minute, "the join summary to hold the run", func() bool {
		r, err := http.Get(base + "/api/join/summary?minutes=60")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		_ = json.NewDecoder(r.Body).Decode(&api)
		return api.Complete == int64(res.Report.Acked) && api.Incomplete == int64(res.Report.Incomplete)
	})
	var complete, incomplete, link string
	err = chromedp.Run(ctx,
		chromedp.Click(`#tabs a[href="#join"]`, chromedp.ByQuery),
		chromedp.SetValue(`#join-minutes`, "60", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#join-counters [data-k="complete"]').textContent === "`+strconv.FormatInt(api.Complete, 10)+`"`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`#join-counters [data-k="complete"]`, &complete, chromedp.ByQuery),
		chromedp.Text(`#join-counters [data-k="incomplete"]`, &incomplete, chromedp.ByQuery),
		chromedp.SetValue(`#event-id`, "web-1", chromedp.ByQuery),
		chromedp.Click(`#event-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#event-workflow`, chromedp.ByQuery),
		chromedp.AttributeValue(`#event-workflow`, "href", &link, nil, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("join view: %v", err)
	}
	if incomplete != strconv.FormatInt(api.Incomplete, 10) || link == "" {
		t.Errorf("join view: %s complete, %s incomplete, link %q; the API %+v", complete, incomplete, link, api)
	}
	testenv.Screenshot(t, ctx, "stack-join")

	// The transactions view: closed windows charted, the open window live.
	err = chromedp.Run(ctx,
		chromedp.Click(`#tabs a[href="#transactions"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#chart-tx").dataset.points > 0`, nil, chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Poll(`document.querySelector("#tx-open").dataset.state === "live"`, nil, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if err != nil {
		t.Fatalf("transactions view: %v", err)
	}
	// The newest window charted is the API's row of that window.
	var last string
	if err := chromedp.Run(ctx, chromedp.AttributeValue(`#chart-tx`, "data-last", &last, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Start time.Time
		Sum   float64
		Count int64
	}
	if err := json.Unmarshal([]byte(last), &shown); err != nil {
		t.Fatalf("data-last %q: %v", last, err)
	}
	r, err := http.Get(base + "/api/windows?pipeline=transactions&limit=500")
	if err != nil {
		t.Fatal(err)
	}
	var rows struct {
		Windows []struct {
			Start time.Time
			Sum   float64
			Count int64
		}
	}
	err = json.NewDecoder(r.Body).Decode(&rows)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range rows.Windows {
		if w.Start.Equal(shown.Start) {
			found = true
			if w.Sum != shown.Sum || w.Count != shown.Count {
				t.Errorf("the chart shows %+v, the API %+v", shown, w)
			}
		}
	}
	if !found {
		t.Errorf("the charted window %v is not among the API's", shown.Start)
	}
	testenv.Screenshot(t, ctx, "stack-transactions")
	if err := chromedp.Run(ctx, chromedp.Click(`#tabs a[href="#sensors"]`, chromedp.ByQuery), chromedp.WaitVisible(`#metrics-form`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, ctx, "stack-sensors")
}
