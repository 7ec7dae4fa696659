package store

// Risk statuses: the values of Agent.RiskStatus, shown as they are.
const (
	RiskSafe   = "Safe"
	RiskAtRisk = "At risk"
)
