package selfupdate

// SetOutcome lets the tests end a trial as the watcher would.
func SetOutcome(dir string, o Outcome) (bool, error) { return setOutcome(dir, o) }
