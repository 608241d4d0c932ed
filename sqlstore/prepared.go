package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"sync"
)

// rowGroupSizes is how many statements a rowStatements holds, for 1, 2,
// 4, ... maxRowGroup rows: the most rows one prepared multi-row statement
// writes; larger writes are split into groups of powers of two up to it.
// 512 rows of 9 columns is 4,608 parameters, well inside SQLite's 32,766.
const (
	rowGroupSizes = 10
	maxRowGroup   = 1 << (rowGroupSizes - 1)
)

// rowStatements is a multi-row statement prepared once on the write handle
// for each power of two from 1 to maxRowGroup rows. SQLite's driver
// prepares a statement for every Exec and finalizes it after: for a
// 1,000-row insert, parsing and compiling its 9,000 placeholders cost about
// a third of the insert. Prepared once, any number of rows is written by
// at most log2(maxRowGroup)+1 executions of statements compiled long ago.
type rowStatements struct {
	once  sync.Once
	err   error
	stmts [rowGroupSizes]*sql.Stmt
}

// preparedRows holds the store's rowStatements by name, prepared when first
// used and closed with the store.
type preparedRows struct {
	mu sync.Mutex
	m  map[string]*rowStatements
}

// rowStatements returns the statements named name, preparing them the
// first time: build returns the statement's text for a number of rows.
// Call it outside a transaction: preparing takes the write handle's
// connection, which a transaction on it holds until it ends.
func (db *DB) rowStatements(ctx context.Context, name string, build func(rows int) string) (*rowStatements, error) {
	db.prepared.mu.Lock()
	rs, ok := db.prepared.m[name]
	if !ok {
		if db.prepared.m == nil {
			db.prepared.m = make(map[string]*rowStatements)
		}
		rs = &rowStatements{}
		db.prepared.m[name] = rs
	}
	db.prepared.mu.Unlock()
	rs.once.Do(func() {
		for i := range rs.stmts {
			st, err := db.write.PrepareContext(ctx, db.rebind(build(1<<i)))
			if err != nil {
				rs.err = fmt.Errorf("sqlstore: prepare %s: %w", name, err)
				return
			}
			rs.stmts[i] = st
		}
	})
	if rs.err != nil {
		// A failed preparation (a cancelled ctx, say) is tried again by
		// the next caller.
		db.prepared.mu.Lock()
		if db.prepared.m[name] == rs {
			delete(db.prepared.m, name)
		}
		db.prepared.mu.Unlock()
		rs.close()
		return nil, rs.err
	}
	return rs, nil
}

// exec writes rows of width arguments each, args holding them in order,
// in transaction c: in groups of the largest power of two rows left, each
// by its prepared statement, which the transaction reuses on its
// connection.
func (rs *rowStatements) exec(ctx context.Context, c conn, width int, args []any) error {
	tx, ok := c.q.(*sql.Tx)
	if !ok {
		return fmt.Errorf("sqlstore: prepared rows used outside a transaction")
	}
	if width <= 0 || len(args)%width != 0 {
		return fmt.Errorf("sqlstore: %d arguments are not rows of %d", len(args), width)
	}
	for len(args) > 0 {
		rows := min(len(args)/width, maxRowGroup)
		i := bits.Len(uint(rows)) - 1
		n := (1 << i) * width
		if _, err := tx.StmtContext(ctx, rs.stmts[i]).ExecContext(ctx, args[:n]...); err != nil {
			return err
		}
		args = args[n:]
	}
	return nil
}

// close closes the statements prepared so far.
func (rs *rowStatements) close() {
	for _, st := range rs.stmts {
		if st != nil {
			st.Close()
		}
	}
}

// closeAll closes every prepared statement; the store is closing.
func (p *preparedRows) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rs := range p.m {
		rs.close()
	}
	p.m = nil
}
