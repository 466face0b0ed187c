package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"gorm.io/gorm"

	"github.com/tributary-dev/tributary/internal/config"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// explainTravelers tells, for each traveler whose visits were found wrong, what the suite
// knows of its readings and what its workflow did with them: where the broker put each
// reading and how long after its planned delivery it acknowledged it, the visits stored, and
// each run of the traveler's workflow with the signals, watermark reads and task failures
// in its history. A failed run in CI leaves nothing else behind, so it prints this.
func explainTravelers(ctx context.Context, temporalAddr string, db *gorm.DB, l *load, travelers []string) string {
	if len(travelers) == 0 {
		return ""
	}
	tc, err := client.DialContext(ctx, client.Options{HostPort: temporalAddr, Namespace: config.Default().Namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Sprintf("explain travelers: dial temporal: %v\n", err)
	}
	defer tc.Close()
	var b strings.Builder
	for _, id := range travelers {
		explainTraveler(ctx, &b, tc, db, l, id)
	}
	return b.String()
}

func explainTraveler(ctx context.Context, b *strings.Builder, tc client.Client, db *gorm.DB, l *load, travelerID string) {
	fmt.Fprintf(b, "\n--- traveler %s\nreadings (event time, partition@offset, acknowledged after its planned delivery):\n", travelerID)
	l.mu.Lock()
	for _, d := range l.traffic[:l.readings] {
		if d.Reading.TravelerID != travelerID {
			continue
		}
		r := readingRef(travelerID, d.Reading.At)
		tp, acked := l.placed[r], l.acked[r]
		late := "never"
		if !acked.IsZero() {
			late = acked.Sub(d.Delivered).Round(time.Millisecond).String()
		}
		fmt.Fprintf(b, "  %s  %d@%d  +%s (planned t+%s)\n", clock(d.Reading.At), tp.Partition, tp.Offset, late,
			d.Delivered.Sub(l.start).Round(time.Millisecond))
	}
	l.mu.Unlock()
	var visits []schemas.Visit
	if err := db.WithContext(ctx).Where("traveler_id = ?", travelerID).Order("entered_at").Find(&visits).Error; err != nil {
		fmt.Fprintf(b, "visits: %v\n", err)
	}
	for _, v := range visits {
		fmt.Fprintf(b, "visit %s..%s, %d readings, by %s at %s\n", clock(v.Entered), clock(v.Left), v.Readings, v.Writer, clock(v.StoredAt))
	}
	id := workflows.TravelerWorkflowID(travelerID, 0)
	runs, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
	if err != nil {
		fmt.Fprintf(b, "runs of %s: %v\n", id, err)
		return
	}
	execs := runs.GetExecutions()
	slices.SortFunc(execs, func(a, c *workflowpb.WorkflowExecutionInfo) int {
		return a.GetStartTime().AsTime().Compare(c.GetStartTime().AsTime())
	})
	for _, e := range execs {
		fmt.Fprintf(b, "run %s (%s):\n", e.GetExecution().GetRunId(), e.GetStatus())
		it := tc.GetWorkflowHistory(ctx, id, e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				fmt.Fprintf(b, "  history: %v\n", err)
				break
			}
			if line := describeEvent(ev); line != "" {
				fmt.Fprintf(b, "  %d %s %s\n", ev.GetEventId(), clock(ev.GetEventTime().AsTime()), line)
			}
		}
	}
}

// describeEvent is one line for the events that explain a traveler's visits; empty for
// the others.
func describeEvent(ev *historypb.HistoryEvent) string {
	dc := converter.GetDefaultDataConverter()
	switch a := ev.GetAttributes().(type) {
	case *historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes:
		var s schemas.TravelerSignal
		if err := dc.FromPayloads(a.WorkflowExecutionSignaledEventAttributes.GetInput(), &s); err != nil {
			return "signal: " + err.Error()
		}
		var parts []string
		for _, r := range s.Readings {
			parts = append(parts, fmt.Sprintf("%d@%d %s", r.Ref.Partition, r.Ref.Offset, clock(r.At)))
		}
		return fmt.Sprintf("signal mark %d watermark %s: %s", s.Mark, clock(s.Watermark), strings.Join(parts, ", "))
	case *historypb.HistoryEvent_MarkerRecordedEventAttributes:
		d := a.MarkerRecordedEventAttributes.GetDetails()
		var data struct{ ActivityType string }
		if p := d["data"]; p != nil {
			_ = dc.FromPayloads(p, &data)
		}
		result := ""
		if p := d["result"]; p != nil && len(p.GetPayloads()) > 0 {
			result = string(p.GetPayloads()[0].GetData())
		}
		if f := a.MarkerRecordedEventAttributes.GetFailure(); f != nil {
			result = "failed: " + f.GetMessage()
		}
		return fmt.Sprintf("marker %s %s %s", a.MarkerRecordedEventAttributes.GetMarkerName(), data.ActivityType, result)
	case *historypb.HistoryEvent_ActivityTaskScheduledEventAttributes:
		attrs := a.ActivityTaskScheduledEventAttributes
		var req struct {
			Visits []struct {
				Entered, Left time.Time
				Readings      int
			}
		}
		if p := attrs.GetInput(); p != nil && len(p.GetPayloads()) > 0 {
			_ = json.Unmarshal(p.GetPayloads()[0].GetData(), &req)
		}
		var vs []string
		for _, v := range req.Visits {
			vs = append(vs, fmt.Sprintf("%s..%s (%d)", clock(v.Entered), clock(v.Left), v.Readings))
		}
		return fmt.Sprintf("activity %s %s", attrs.GetActivityType().GetName(), strings.Join(vs, ", "))
	case *historypb.HistoryEvent_WorkflowTaskFailedEventAttributes:
		return fmt.Sprintf("task failed: %s %s", a.WorkflowTaskFailedEventAttributes.GetCause(), a.WorkflowTaskFailedEventAttributes.GetFailure().GetMessage())
	case *historypb.HistoryEvent_WorkflowTaskTimedOutEventAttributes:
		return "task timed out"
	case *historypb.HistoryEvent_TimerFiredEventAttributes:
		return "timer fired"
	case *historypb.HistoryEvent_WorkflowTaskStartedEventAttributes:
		return "task started"
	case *historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes:
		return "completed"
	}
	return ""
}

// clock shows a time of day to the millisecond, or "-" for none.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("15:04:05.000")
}
