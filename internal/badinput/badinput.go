// Package badinput is a corpus of records every input topic must refuse: not JSON, wrong
// types, missing fields, unknown schema version, oversized, invalid UTF-8, NaN, infinities
// and huge numbers, times far in the past or future, a key different from the id. The
// end-to-end test sends it to the topics, keyed "bad-1"; the fuzz targets start from it.
package badinput

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

//go:embed corpus
var corpus embed.FS

// Key is the record key the corpus is sent with.
const Key = "bad-1"

// Pipelines are the corpus's folders: join, likes, sensors, transactions.
var Pipelines = []string{"join", "likes", "sensors", "transactions"}

// Records returns a pipeline's bad records by case name.
func Records(pipeline string) (map[string][]byte, error) {
	dir := path.Join("corpus", pipeline)
	entries, err := fs.ReadDir(corpus, dir)
	if err != nil {
		return nil, fmt.Errorf("bad-input corpus %s: %w", pipeline, err)
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(corpus, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = b
	}
	return out, nil
}
