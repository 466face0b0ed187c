package outbox

import (
	"strings"
	"testing"
)

// A dedup key is printable ASCII whatever the identity holds, one identity gives one key
// and two give two, and identities of one topic keep the order of their keys.
func TestDedupKeys(t *testing.T) {
	long := strings.Repeat("k", maxOrderedDedup)
	identities := []string{
		"acks\x00e1", "acks\x00e2", "acks\x00e10", "acks\x00", "acks", "acks\x00e1\x00",
		"acks\x00%00e1", "acks\x00\x00e1", "acks\x00%", "acks\x00%25", "acks\x00 ", "acks\x00\xff\xfe", "acks\x00é",
		long, long + "k", long[:maxOrderedDedup-10] + "\x00\x00\x00\x00", "#" + long, "=acks\x00e1",
	}
	seen := map[string]string{}
	for _, id := range identities {
		k := dedupKey(id)
		if k != dedupKey(id) {
			t.Fatalf("%q: two keys", id)
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] > '~' {
				t.Fatalf("%q: key %q holds byte %#x", id, k, k[i])
			}
		}
		if len(k) > maxOrderedDedup+1 || (k[0] != '=' && k[0] != '#') {
			t.Fatalf("%q: key %q", id, k)
		}
		if other, ok := seen[k]; ok {
			t.Fatalf("%q and %q share the key %q", id, other, k)
		}
		seen[k] = id
	}
	if k := dedupKey(long + "k"); k[0] != '#' || len(k) != 65 {
		t.Errorf("an identity too long for the ordered form: key %q", k)
	}
	for _, pair := range [][2]string{{"acks\x00e1", "acks\x00e2"}, {"acks\x00sh-19", "acks\x00sh-2"}, {"acks\x00a", "acks\x00b\x00"}} {
		if dedupKey(pair[0]) >= dedupKey(pair[1]) {
			t.Errorf("%q sorts after %q: %q, %q", pair[0], pair[1], dedupKey(pair[0]), dedupKey(pair[1]))
		}
	}
}
