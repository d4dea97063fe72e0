package storage

import (
	"fmt"
	"strings"
)

// The schema is described once, here, and each store spells the
// description in its own SQL: adding a table or a column is one new
// migration in this list, which SQLite and PostgreSQL both apply.

// colType is a column's type in the description.
type colType int

const (
	tText  colType = iota
	tInt           // 64-bit; times are Unix nanoseconds, 0 for "not yet"
	tBool          // stored as 0/1 where the database has no boolean
	tBytes         // token hashes
)

// column is NOT NULL with its type's zero value as default, unless
// noDefault (a value every insert gives).
type column struct {
	name      string
	typ       colType
	noDefault bool
	// references is "table (column)" for a foreign key.
	references string
}

// step is one change of a migration.
type step interface {
	statements(d *dialect) []string
}

// createTable makes a table with a primary key.
type createTable struct {
	name    string
	columns []column
	key     []string
}

// addColumn adds a column to an existing table.
type addColumn struct {
	table  string
	column column
}

// createIndex makes an index.
type createIndex struct {
	name, table string
	columns     []string
}

// portable is SQL that both stores read the same way (data changes).
type portable string

// migrations run in order, once each; the number applied is the
// schema's version. Append only.
var migrations = [][]step{
	{
		createTable{name: "battles", key: []string{"id"}, columns: []column{
			{name: "id", typ: tText, noDefault: true},
			{name: "title", typ: tText, noDefault: true},
			{name: "state", typ: tText, noDefault: true},
			{name: "created_at", typ: tInt, noDefault: true},
			{name: "started_at", typ: tInt},
			{name: "ended_at", typ: tInt},
			{name: "singer1_name", typ: tText},
			{name: "singer2_name", typ: tText},
			{name: "rounds", typ: tInt},
			{name: "turn_seconds", typ: tInt},
			{name: "host_token_hash", typ: tBytes, noDefault: true},
			{name: "singer1_token_hash", typ: tBytes, noDefault: true},
			{name: "singer2_token_hash", typ: tBytes, noDefault: true},
			{name: "recorded", typ: tBool},
			{name: "recording_error", typ: tText},
		}},
		createIndex{name: "battles_state_created", table: "battles", columns: []string{"state", "created_at"}},
		createIndex{name: "battles_created", table: "battles", columns: []string{"created_at"}},
	},
	{
		addColumn{table: "battles", column: column{name: "clock_started_at", typ: tInt}},
		createTable{name: "votes", key: []string{"battle_id", "round", "watcher"}, columns: []column{
			{name: "battle_id", typ: tText, noDefault: true, references: "battles (id)"},
			{name: "round", typ: tInt, noDefault: true},
			{name: "watcher", typ: tText, noDefault: true},
			{name: "slot", typ: tInt, noDefault: true},
			{name: "at", typ: tInt, noDefault: true},
		}},
	},
	{
		// Singers are named at creation ("Singer 1" when unnamed).
		portable(`UPDATE battles SET singer1_name = 'Singer 1' WHERE singer1_name = ''`),
		portable(`UPDATE battles SET singer2_name = 'Singer 2' WHERE singer2_name = ''`),
	},
	{
		// Several origins: the origin running each battle, what it last
		// said of the battle's singers and viewers, and the registry.
		addColumn{table: "battles", column: column{name: "origin", typ: tText}},
		addColumn{table: "battles", column: column{name: "connected1", typ: tBool}},
		addColumn{table: "battles", column: column{name: "connected2", typ: tBool}},
		addColumn{table: "battles", column: column{name: "viewers", typ: tInt}},
		createIndex{name: "battles_origin_state", table: "battles", columns: []string{"origin", "state"}},
		createTable{name: "origins", key: []string{"url"}, columns: []column{
			{name: "url", typ: tText, noDefault: true},
			{name: "capacity", typ: tInt},
			{name: "live", typ: tInt},
			{name: "seen_at", typ: tInt},
		}},
	},
	{
		// The per-network caps: the network a battle was created from,
		// and the network each vote came from.
		addColumn{table: "battles", column: column{name: "creator_network", typ: tText}},
		createIndex{name: "battles_network_state", table: "battles", columns: []string{"creator_network", "state"}},
		addColumn{table: "votes", column: column{name: "network", typ: tText}},
		createIndex{name: "votes_network", table: "votes", columns: []string{"battle_id", "round", "network"}},
	},
	{
		// The audience: each battle's chat (its mode, the number of its
		// last change, its messages and mutes), the watchers' display
		// names, the cheers per side and the rematch.
		addColumn{table: "battles", column: column{name: "chat_mode", typ: tText}},
		addColumn{table: "battles", column: column{name: "chat_seq", typ: tInt}},
		addColumn{table: "battles", column: column{name: "cheers1", typ: tInt}},
		addColumn{table: "battles", column: column{name: "cheers2", typ: tInt}},
		addColumn{table: "battles", column: column{name: "rematch_id", typ: tText}},
		createTable{name: "chat_messages", key: []string{"battle_id", "seq"}, columns: []column{
			{name: "battle_id", typ: tText, noDefault: true, references: "battles (id)"},
			{name: "seq", typ: tInt, noDefault: true},
			{name: "author", typ: tText, noDefault: true},
			{name: "name", typ: tText, noDefault: true},
			{name: "text", typ: tText, noDefault: true},
			{name: "slot", typ: tInt},
			{name: "at", typ: tInt, noDefault: true},
			{name: "deleted", typ: tBool},
			{name: "changed", typ: tInt, noDefault: true},
		}},
		createIndex{name: "chat_messages_changed", table: "chat_messages", columns: []string{"battle_id", "changed"}},
		createIndex{name: "chat_messages_author", table: "chat_messages", columns: []string{"battle_id", "author", "at"}},
		createTable{name: "chat_mutes", key: []string{"battle_id", "author"}, columns: []column{
			{name: "battle_id", typ: tText, noDefault: true, references: "battles (id)"},
			{name: "author", typ: tText, noDefault: true},
		}},
		createTable{name: "watcher_names", key: []string{"watcher"}, columns: []column{
			{name: "watcher", typ: tText, noDefault: true},
			{name: "name", typ: tText, noDefault: true},
		}},
	},
}

// dialect is how one database spells the description and takes the
// locks the stores need.
type dialect struct {
	name string
	// types and zeros spell each colType and its default.
	types, zeros map[colType]string
	// placeholder spells the n-th (1-based) query parameter.
	placeholder func(n int) string
	// prepare readies a migration's transaction: it creates the version
	// record if need be and takes the lock that keeps two servers from
	// migrating at once.
	prepare []string
	// version reads the schema's version; setVersion records it (a
	// format for the number).
	version, setVersion string
	// lockPlacement, when not "", is run first in every transaction
	// that places battles, so that two placements never count the same
	// free place.
	lockPlacement string
	// lockVotes, when not "", is run first, with the battle's id, in
	// every transaction that records a vote in that battle, so that two
	// first votes of one network never both pass its cap.
	lockVotes string
	// noSpace tells whether err is the database's disk being full.
	noSpace func(err error) bool
}

func (c column) spell(d *dialect) string {
	s := c.name + " " + d.types[c.typ] + " NOT NULL"
	if !c.noDefault {
		s += " DEFAULT " + d.zeros[c.typ]
	}
	if c.references != "" {
		s += " REFERENCES " + c.references
	}
	return s
}

func (c createTable) statements(d *dialect) []string {
	defs := make([]string, 0, len(c.columns)+1)
	for _, col := range c.columns {
		defs = append(defs, col.spell(d))
	}
	defs = append(defs, "PRIMARY KEY ("+strings.Join(c.key, ", ")+")")
	return []string{fmt.Sprintf("CREATE TABLE %s (\n\t%s\n)", c.name, strings.Join(defs, ",\n\t"))}
}

func (a addColumn) statements(d *dialect) []string {
	return []string{fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", a.table, a.column.spell(d))}
}

func (i createIndex) statements(*dialect) []string {
	return []string{fmt.Sprintf("CREATE INDEX %s ON %s (%s)", i.name, i.table, strings.Join(i.columns, ", "))}
}

func (p portable) statements(*dialect) []string { return []string{string(p)} }

// rebind spells the ? parameters of a query in d's way. Queries are
// written with ? and hold no ? anywhere else.
func (d *dialect) rebind(query string) string {
	if d.placeholder == nil || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString(d.placeholder(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
