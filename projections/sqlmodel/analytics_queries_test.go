package sqlmodel_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docQuery is one ```sql block of docs/analytics.md.
type docQuery struct {
	title   string // the heading above it
	dialect string // "" (both), "sqlite" or "postgres"
	text    string
	columns []string
}

var (
	sqlBlockRe = regexp.MustCompile("(?s)```sql( sqlite| postgres)?\n(.*?)```")
	headingRe  = regexp.MustCompile(`(?m)^#{2,4} (.+)$`)
	columnsRe  = regexp.MustCompile(`(?m)^-- columns: (.+)$`)
)

func docQueries(t *testing.T) []docQuery {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "analytics.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	var out []docQuery
	for _, loc := range sqlBlockRe.FindAllStringSubmatchIndex(doc, -1) {
		q := docQuery{text: doc[loc[4]:loc[5]]}
		if loc[2] >= 0 {
			q.dialect = strings.TrimSpace(doc[loc[2]:loc[3]])
		}
		if hs := headingRe.FindAllStringSubmatch(doc[:loc[0]], -1); len(hs) > 0 {
			q.title = hs[len(hs)-1][1]
		}
		cols := columnsRe.FindStringSubmatch(q.text)
		if cols == nil {
			t.Fatalf("docs/analytics.md, %q: the sql block has no '-- columns: a, b' line", q.title)
		}
		for _, c := range strings.Split(cols[1], ",") {
			q.columns = append(q.columns, strings.TrimSpace(c))
		}
		out = append(out, q)
	}
	return out
}

// TestAnalyticsQueries runs every ```sql block of docs/analytics.md (those marked
// "sql sqlite" or "sql postgres" on their database only) against the model of a
// generated history, and checks that it returns rows with the columns its
// "-- columns:" line names. CURRENT_TIMESTAMP is replaced by an instant inside the
// history (an hour before the last response deadline of a ticket still unanswered), so that the queries about
// "now" have rows.
func TestAnalyticsQueries(t *testing.T) {
	queries := docQueries(t)
	both := 0
	for _, q := range queries {
		if q.dialect == "" {
			both++
		}
	}
	if len(queries) < 10 || both < 6 {
		t.Fatalf("docs/analytics.md has %d sql blocks (%d for both databases); it promises ten queries", len(queries), both)
	}
	hist := loadHistory(t)
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		m, _ := sharedModel(t, b, hist)
		var next sqlTime
		err := m.Read(ctx, func(db *sql.DB) error {
			return db.QueryRowContext(ctx, `SELECT MAX(response_by) FROM tickets
				WHERE sla IS NOT NULL AND first_responded_on IS NULL`).Scan(&next)
		})
		if err != nil || next.Time.IsZero() {
			t.Fatalf("no first response still to come in the history (%v)", err)
		}
		now := next.Time.Add(-time.Hour).Truncate(time.Second)
		literal := "'" + now.Format(time.DateTime) + "'"
		if b.name == "postgres" {
			literal = "TIMESTAMPTZ '" + now.Format(time.DateTime) + "+00'"
		}
		ran := 0
		for _, q := range queries {
			if q.dialect != "" && q.dialect != b.name {
				continue
			}
			ran++
			text := strings.ReplaceAll(q.text, "CURRENT_TIMESTAMP", literal)
			err := m.Read(ctx, func(db *sql.DB) error {
				rows, err := db.QueryContext(ctx, text)
				if err != nil {
					return err
				}
				defer rows.Close()
				cols, err := rows.Columns()
				if err != nil {
					return err
				}
				if !slices.Equal(cols, q.columns) {
					t.Errorf("%q (%s): columns %v, the doc says %v", q.title, b.name, cols, q.columns)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Err(); err != nil {
					return err
				}
				if n == 0 {
					t.Errorf("%q (%s): no rows", q.title, b.name)
				}
				t.Logf("%-60s %4d rows", q.title, n)
				return nil
			})
			if err != nil {
				t.Errorf("%q (%s): %v\n%s", q.title, b.name, err, text)
			}
		}
		if ran < 10 {
			t.Errorf("ran %d queries on %s, want 10", ran, b.name)
		}
	})
}
