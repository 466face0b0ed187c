package app_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary-dev/tributary/internal/testenv"
	"github.com/tributary-dev/tributary/schemas"
	"github.com/tributary-dev/tributary/workflows"
)

// TestClientsUsersAlreadyHave runs kcat and the Temporal CLI against the embedded stack,
// as the README shows them: kcat lists the topics, sends an event's three rows (flat, as
// the original producer wrote them, no key) and reads its ack back; the Temporal CLI lists
// the event's workflow, describes it and asks it the status query. `make deps` installs both.
func TestClientsUsersAlreadyHave(t *testing.T) {
	kcat, temporal := tool(t, "kcat"), tool(t, "temporal")
	cfg := testenv.Config(t)
	env := testenv.Start(t, cfg)

	topics := command(t, "", kcat, "-b", cfg.KafkaBootstrap, "-L")
	for _, topic := range append([]string{schemas.TopicAck}, schemas.JoinTopics...) {
		require.Contains(t, topics, `topic "`+topic+`"`, "kcat -L lists %s", topic)
	}
	const id = "4242"
	for i, topic := range schemas.JoinTopics {
		row := `{"id":4242.0,"feature1":` + []string{"0.5", "null", "2.0"}[i] + "}\n"
		command(t, row, kcat, "-b", cfg.KafkaBootstrap, "-P", "-t", topic)
	}
	workflowID := workflows.JoinWorkflowID(id, cfg.Join.Shards)
	waitClosed(t, env, workflowID)
	require.Eventually(t, func() bool {
		acks := command(t, "", kcat, "-b", cfg.KafkaBootstrap, "-C", "-t", schemas.TopicAck, "-o", "beginning", "-e", "-q", "-f", "%k %s\n")
		return strings.Contains(acks, id+` {`) && strings.Contains(acks, `"status":"complete"`)
	}, time.Minute, testenv.Poll, "kcat reads the ack")

	at := []string{"--address", cfg.TemporalAddress, "--namespace", cfg.Namespace}
	list := command(t, "", temporal, append([]string{"workflow", "list", "--query", "WorkflowId = '" + workflowID + "'"}, at...)...)
	require.Contains(t, list, workflowID, "temporal workflow list")
	described := command(t, "", temporal, append([]string{"workflow", "describe", "-w", workflowID, "-o", "json"}, at...)...)
	require.Contains(t, described, "WORKFLOW_EXECUTION_STATUS_COMPLETED", "temporal workflow describe")
	status := command(t, "", temporal, append([]string{"workflow", "query", "-w", workflowID, "--type", workflows.QueryStatus, "-o", "json"}, at...)...)
	require.Contains(t, strings.Join(strings.Fields(status), ""), `"Complete":1`, "temporal workflow query --type status: %s", status)
}

// tool finds a client program on PATH or in Go's bin directory, where `make deps` puts it.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed: `make deps` installs it", name)
	return ""
}

// command runs a program with stdin and a deadline, failing the test on an error, and
// returns what it printed.
func command(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}
