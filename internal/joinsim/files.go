package joinsim

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/tributary-dev/tributary/schemas"
)

// FileRow is one data row of an input file: its id and its feature columns.
type FileRow struct {
	ID     string
	Fields json.RawMessage
}

// FileSet is one file per join topic, in topic order.
type FileSet struct {
	Paths [3]string
	Rows  [3][]FileRow
}

// FindFiles picks the CSV and XLSX files of dir in name order: the first feeds topic1, the
// second topic2, the third topic3, as sim_file1..3 fed the original's topics.
func FindFiles(dir string) ([3]string, error) {
	var paths [3]string
	entries, err := os.ReadDir(dir)
	if err != nil {
		return paths, fmt.Errorf("read input directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".csv" || ext == ".xlsx") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files)
	if len(files) != 3 {
		return paths, fmt.Errorf("%s has %d CSV/XLSX files, want exactly 3 (one per topic, in name order)", dir, len(files))
	}
	copy(paths[:], files)
	return paths, nil
}

// LoadFiles reads the three files of dir.
func LoadFiles(dir string) (FileSet, error) {
	var fs FileSet
	paths, err := FindFiles(dir)
	if err != nil {
		return fs, err
	}
	fs.Paths = paths
	for i, p := range paths {
		rows, err := ReadFile(p)
		if err != nil {
			return fs, err
		}
		fs.Rows[i] = rows
	}
	return fs, nil
}

// ReadFile reads a CSV or XLSX file whose header is "id" then feature columns. Integers and
// decimals become numbers; "NA" or an empty cell becomes null.
func ReadFile(path string) ([]FileRow, error) {
	var table [][]string
	var err error
	if strings.EqualFold(filepath.Ext(path), ".xlsx") {
		table, err = readXLSX(path)
	} else {
		table, err = readCSV(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(table) == 0 || len(table[0]) < 2 || strings.ToLower(strings.TrimSpace(table[0][0])) != "id" {
		return nil, fmt.Errorf("read %s: want a header row starting with id", path)
	}
	header := table[0]
	rows := make([]FileRow, 0, len(table)-1)
	for li, rec := range table[1:] {
		if len(rec) == 0 || strings.TrimSpace(rec[0]) == "" {
			continue
		}
		fields := make(map[string]any, len(header)-1)
		for c := 1; c < len(header); c++ {
			cell := ""
			if c < len(rec) {
				cell = strings.TrimSpace(rec[c])
			}
			if cell == "" || strings.EqualFold(cell, "NA") {
				fields[header[c]] = nil
				continue
			}
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				return nil, fmt.Errorf("read %s line %d column %s: %q is not a number or NA", path, li+2, header[c], cell)
			}
			fields[header[c]] = v
		}
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, err
		}
		rows = append(rows, FileRow{ID: strings.TrimSpace(rec[0]), Fields: b})
	}
	return rows, nil
}

func readCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	var out [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
}

func readXLSX(path string) ([][]string, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, errors.New("no sheets")
	}
	return f.GetRows(sheets[0])
}

// WriteSamples writes files shaped like the original's sim_file1..3 (id, then 29, 9 and 25
// feature columns, NA for missing values, decimals in the second file's feature5 and
// feature6): the first as XLSX, the others as CSV, so both readers are exercised.
func WriteSamples(dir string, rows int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := Plan{RunID: "sample", Events: rows, Seed: seed, NAFraction: 0.05}
	for i, topic := range schemas.JoinTopics {
		header := []string{"id"}
		for c := 1; c <= Columns[topic]; c++ {
			header = append(header, "feature"+strconv.Itoa(c))
		}
		table := [][]string{header}
		for n := range rows {
			var fields map[string]any
			_ = json.Unmarshal(p.Generate(n).Rows[topic], &fields)
			rec := []string{strconv.Itoa(n + 1)}
			for _, h := range header[1:] {
				switch v := fields[h].(type) {
				case nil:
					rec = append(rec, "NA")
				case float64:
					rec = append(rec, strconv.FormatFloat(v, 'f', -1, 64))
				}
			}
			table = append(table, rec)
		}
		name := filepath.Join(dir, fmt.Sprintf("sim_file%d", i+1))
		var err error
		if i == 0 {
			err = writeXLSX(name+".xlsx", table)
		} else {
			err = writeCSV(name+".csv", table)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(path string, table [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(table); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeXLSX(path string, table [][]string) error {
	f := excelize.NewFile()
	defer f.Close()
	for r, rec := range table {
		for c, v := range rec {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			var val any = v
			if n, err := strconv.ParseFloat(v, 64); err == nil && r > 0 {
				val = n
			}
			if err := f.SetCellValue("Sheet1", cell, val); err != nil {
				return err
			}
		}
	}
	return f.SaveAs(path)
}
