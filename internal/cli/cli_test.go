package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/internal/joinsim"
	"github.com/tributary-dev/tributary/internal/testenv"
)

// TestDemo runs the README's first command in-process, on free ports, and reads its report.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	ui := testenv.FreePort(t)
	apiPort := testenv.FreePort(t)
	args := []string{"demo", "-exit", "-n", "400", "-rate", "400", "-seed", "5",
		"-state-dir", dir,
		"-kafka", "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"-temporal", "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"-ui-port", strconv.Itoa(ui),
		"-api", "127.0.0.1:" + strconv.Itoa(apiPort),
		"-join-deadline", "3s"}
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	uiStatus := make(chan int, 1)
	dashboard := make(chan int, 1)
	go func() {
		// So does the dashboard.
		require.Eventually(t, func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", apiPort))
			if err != nil {
				return false
			}
			resp.Body.Close()
			dashboard <- resp.StatusCode
			return true
		}, time.Minute, testenv.Poll, "the dashboard")
	}()
	go func() {
		// While the demo runs, the Temporal UI answers on its port.
		require.Eventually(t, func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ui))
			if err != nil {
				return false
			}
			resp.Body.Close()
			uiStatus <- resp.StatusCode
			return true
		}, time.Minute, testenv.Poll, "the Temporal UI")
	}()
	if code := Main(ctx, args, out, out, testenv.Logger(t)); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	text := out.String()
	for _, ready := range []string{"kafka     ready", "temporal  ready", "ui        ready", "worker    ready", "bridge    ready  join (4 shard workflows), sensors (4 traveler shards), likes, transactions", "api       ready  http://127.0.0.1:" + strconv.Itoa(apiPort)} {
		if !strings.Contains(text, ready) {
			t.Errorf("no %q line in:\n%s", ready, text)
		}
	}
	plan := joinsim.Plan{Events: 400, Seed: 5, MissingFraction: 0.05, DuplicateFraction: 0.02, MalformedFraction: 0.01, NAFraction: 0.05}
	exp := plan.Expected()
	for label, want := range map[string]int{"acked (complete)": exp.Complete, "incomplete": exp.Incomplete, "dead-lettered": exp.Malformed} {
		m := regexp.MustCompile(regexp.QuoteMeta(label) + `\s+(\d+)`).FindStringSubmatch(text)
		if m == nil || m[1] != strconv.Itoa(want) {
			t.Errorf("report line %q = %v, want %d", label, m, want)
		}
	}
	for _, want := range []string{"ack delay  ", "ack delay distribution", "sending events", "awaiting acks", "100%"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	select {
	case code := <-uiStatus:
		if code != http.StatusOK {
			t.Errorf("Temporal UI answered %d", code)
		}
	default:
		t.Error("the Temporal UI never answered while the demo ran")
	}
	select {
	case code := <-dashboard:
		if code != http.StatusOK {
			t.Errorf("dashboard answered %d", code)
		}
	default:
		t.Error("the dashboard never answered while the demo ran")
	}
	if _, err := os.Stat(filepath.Join(dir, "temporal.db")); err != nil {
		t.Errorf("no Temporal database in the state directory: %v", err)
	}
}

// TestBadFlags: each bad command line fails, saying why; where a flag's value is wrong,
// the message names the flag (so the subcommand read its first flag, not only later ones).
func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"simulate", "join", "-missing", "2"}, "missing"},
		{[]string{"simulate", "join", "-n", "0"}, "-n"},
		{[]string{"simulate", "likes", "-skew", "0.5"}, "skew"},
		{[]string{"simulate", "nothing"}, "usage"},
		{[]string{"verify", "likes"}, ""},
		{[]string{"bench"}, "usage"},
		{[]string{"bench", "join", "-no-such-flag"}, "no-such-flag"},
		{[]string{"bench", "all", "-no-such-flag"}, "no-such-flag"},
		{[]string{"nonsense"}, ""},
		{[]string{"dev", "-partitions", "0", "-state-dir", t.TempDir()}, "partitions"},
	} {
		var out bytes.Buffer
		if code := Main(context.Background(), c.args, &out, &out, testenv.Logger(t)); code == 0 {
			t.Errorf("%v exited 0:\n%s", c.args, out.String())
		} else if out.Len() == 0 {
			t.Errorf("%v failed without saying why", c.args)
		} else if !strings.Contains(out.String(), c.says) {
			t.Errorf("%v: %q does not say %q", c.args, out.String(), c.says)
		}
	}
}

// Each subcommand's -h lists the flags it reads and no others: simulate join knows no
// bridge, server, sensor or database flags.
func TestSubcommandHelpListsItsOwnFlags(t *testing.T) {
	for _, c := range []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"simulate", "join", "-h"}, []string{"-kafka", "-temporal", "-n", "-rate", "-missing"},
			[]string{"-batch-window", "-max-batch", "-ui-port", "-history-shards", "-sensor-grace", "-sensor-idle-gap", "-database", "-state-dir", "-api", "-join-shards"}},
		{[]string{"simulate", "sensors", "-h"}, []string{"-kafka", "-state-dir", "-sensor-idle-gap", "-sensor-disorder", "-sensors"},
			[]string{"-batch-window", "-ui-port", "-join-deadline", "-api"}},
		{[]string{"verify", "transactions", "-h"}, []string{"-state-dir", "-database", "-replayed"},
			[]string{"-batch-window", "-ui-port", "-join-shards"}},
		{[]string{"dev", "-h"}, []string{"-state-dir", "-ui-port", "-batch-window", "-temporal-database", "-metrics", "-roles"}, nil},
	} {
		help := captureStderr(t, func() {
			if code := Main(context.Background(), c.args, io.Discard, io.Discard, testenv.Logger(t)); code != 0 {
				t.Errorf("%v exited %d", c.args, code)
			}
		})
		flags := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(help, -1) {
			flags[m[1]] = true
		}
		for _, f := range c.want {
			if !flags[f] {
				t.Errorf("%v does not list %s:\n%s", c.args, f, help)
			}
		}
		for _, f := range c.notWant {
			if flags[f] {
				t.Errorf("%v lists %s, which it does not read", c.args, f)
			}
		}
	}
}

// captureStderr runs f and returns what it wrote to the process's standard error, where
// the flag package prints -h.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = saved }()
	f()
	w.Close()
	return <-done
}

// A command that reads results refuses a state directory with no database, and makes none.
func TestReadingCommandsNeedTheirDatabase(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "elsewhere")
	for _, args := range [][]string{
		{"verify", "transactions", "-state-dir", missing},
		{"simulate", "likes", "-state-dir", missing, "-kafka", "127.0.0.1:1"},
		{"simulate", "sensors", "-state-dir", missing, "-kafka", "127.0.0.1:1"},
	} {
		var out bytes.Buffer
		code := Main(context.Background(), args, &out, &out, testenv.Logger(t))
		if code == 0 || !strings.Contains(out.String(), "no results database at "+filepath.Join(missing, "tributary.db")) {
			t.Errorf("%v exited %d: %s", args, code, out.String())
		}
		if _, err := os.Stat(missing); err == nil {
			t.Errorf("%v made %s", args, missing)
		}
	}
}

func TestSamplesCommand(t *testing.T) {
	dir := t.TempDir()
	if code := Main(context.Background(), []string{"samples", "join", "-out", dir, "-rows", "7"}, io.Discard, io.Discard, testenv.Logger(t)); code != 0 {
		t.Fatal("samples failed")
	}
	fs, err := joinsim.LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.Rows[0]) != 7 {
		t.Errorf("%d rows, want 7", len(fs.Rows[0]))
	}
}

// syncBuffer is a bytes.Buffer safe for the progress bar and the report writing at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTransactionsCommands runs `simulate transactions` and `verify transactions` against a
// running stack, as a user would in a second terminal.
func TestTransactionsCommands(t *testing.T) {
	cfg := testenv.Config(t)
	testenv.Start(t, cfg)
	flags := []string{"-kafka", cfg.KafkaBootstrap, "-temporal", cfg.TemporalAddress}
	var out bytes.Buffer
	if code := Main(context.Background(), append([]string{"simulate", "transactions", "-n", "5000", "-rate", "5000"}, flags...), &out, &out, testenv.Logger(t)); code != 0 {
		t.Fatalf("simulate transactions exited %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "sent 5000 transactions") {
		t.Errorf("simulate said:\n%s", out.String())
	}
	require.Eventually(t, func() bool {
		out.Reset()
		code := Main(context.Background(), append([]string{"verify", "transactions", "-state-dir", cfg.StateDir}, flags...), &out, &out, testenv.Logger(t))
		return code == 0 && strings.Contains(out.String(), "5000 records") && strings.Contains(out.String(), "0 still open")
	}, time.Minute, testenv.Poll, "verify to pass")
	if !strings.Contains(out.String(), "every closed window equals the recomputation") {
		t.Errorf("verify said:\n%s", out.String())
	}
}

// TestSimulateSensorsCommand runs `simulate sensors` against a running stack: it sends its
// traffic in real time, waits for the visits, and prints true and measured speeds.
func TestSimulateSensorsCommand(t *testing.T) {
	cfg := testenv.Config(t)
	cfg.Sensors.IdleGap, cfg.Sensors.Disorder = 4*time.Second, time.Second
	testenv.Start(t, cfg)
	flags := []string{"-kafka", cfg.KafkaBootstrap, "-temporal", cfg.TemporalAddress, "-state-dir", cfg.StateDir,
		"-sensor-idle-gap", "4s", "-sensor-disorder", "1s"}
	var out syncBuffer
	args := append([]string{"simulate", "sensors", "-sensors", "3", "-rate", "4", "-duration", "4s", "-legs", "2", "-field", "6",
		"-every", "250ms", "-noise", "0.05", "-jitter", "400ms", "-bad", "0.3", "-wait", "90s"}, flags...)
	if code := Main(context.Background(), args, &out, &out, testenv.Logger(t)); code != 0 {
		t.Fatalf("simulate sensors exited %d:\n%s", code, out.String())
	}
	text := out.String()
	m := regexp.MustCompile(`(\d+) of (\d+) visits stored`).FindStringSubmatch(text)
	if m == nil || m[1] != m[2] || m[1] != "32" {
		t.Errorf("want all 32 visits (16 travelers, 2 legs) stored:\n%s", text)
	}
	for _, want := range []string{"16 travelers over 3 sensors", "readings  ", "100%", "true speed m/s", "pedestrian"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// Measured speeds are within noise of the true ones, per type.
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[3] == "0" {
			continue
		}
		truth, err1 := strconv.ParseFloat(f[2], 64)
		measured, err2 := strconv.ParseFloat(f[4], 64)
		if err1 == nil && err2 == nil && (measured < truth*0.9 || measured > truth*1.1+0.3) {
			t.Errorf("%s: measured %.2f m/s, true %.2f", f[0], measured, truth)
		}
	}
}
