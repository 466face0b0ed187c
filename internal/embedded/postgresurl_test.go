package embedded

import (
	"strings"
	"testing"
)

func TestParsePostgresURL(t *testing.T) {
	c, err := parsePostgresURL("postgres://temporal:secret@db.internal/?sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectAddr != "db.internal:5432" || c.DatabaseName != "temporal" || c.User != "temporal" ||
		c.Password != "secret" || c.ConnectAttributes["sslmode"] != "require" {
		t.Errorf("parsed %+v", c)
	}
	for raw, want := range map[string]string{
		"mysql://u@h/temporal":               "want postgres://",
		"postgres:///temporal":               "names no host",
		"postgres://u:hidden@h/a;drop":       "not a plain database name",
		"postgres://u:hidden@h:5432/%zz":     "Temporal database URL",
		"postgresql://u:hidden@h/x y?ssl=no": "not a plain database name",
	} {
		_, err := parsePostgresURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hidden") {
			t.Errorf("%s: the error shows the password: %v", raw, err)
		}
	}
}
