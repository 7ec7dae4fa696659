package store

// Risk is an agent's risk status (seed 002's asset table): at risk while
// it has a vulnerability, a baseline risk or an alert.
type Risk string

// Risk statuses: the values of Agent.RiskStatus, shown as they are.
const (
	RiskSafe   Risk = "Safe"
	RiskAtRisk Risk = "At risk"
)
