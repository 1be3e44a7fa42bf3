package sqlmodel

// Test hooks.

// SetFailCommit makes every commit call fn just before committing; an error aborts it.
func (m *Model) SetFailCommit(fn func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failCommit = fn
}

// Kill simulates a crash: the database is closed and whatever is pending is lost.
func (m *Model) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.batch.reset()
	m.dbMu.Lock()
	defer m.dbMu.Unlock()
	m.db.Close()
}

// Pending is the number of events applied but not committed.
func (m *Model) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batch.events
}

// Config is the model's configuration.
func (m *Model) Config() Config { return m.cfg }
