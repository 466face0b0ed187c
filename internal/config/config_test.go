package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Validate reports the config's own settings and every component's, all at once.
func TestValidateReportsEveryComponent(t *testing.T) {
	c := Default()
	c.Partitions = 0
	c.Join.Deadline = -time.Second
	c.Windows.MaxUpdates = 5000
	c.Sensors.IdleGap = -time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"-partitions", "join", "window max updates", "sensors"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvJoinShards, "8")
	t.Setenv(EnvKafka, "broker:9092")
	c, err := FromEnv()
	if err != nil || c.Join.Shards != 8 || c.KafkaBootstrap != "broker:9092" {
		t.Fatalf("config %+v, %v", c, err)
	}
	t.Setenv(EnvJoinShards, "eight")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvJoinShards) {
		t.Errorf("bad %s: %v", EnvJoinShards, err)
	}
}

func TestLogLevel(t *testing.T) {
	t.Setenv(EnvLogLevel, "")
	if l, err := LogLevel(slog.LevelWarn); err != nil || l != slog.LevelWarn {
		t.Errorf("unset: %v, %v", l, err)
	}
	t.Setenv(EnvLogLevel, "debug")
	if l, err := LogLevel(slog.LevelWarn); err != nil || l != slog.LevelDebug {
		t.Errorf("debug: %v, %v", l, err)
	}
	t.Setenv(EnvLogLevel, "chatty")
	if _, err := LogLevel(slog.LevelWarn); err == nil || !strings.Contains(err.Error(), EnvLogLevel) {
		t.Errorf("a bad level was taken: %v", err)
	}
}
