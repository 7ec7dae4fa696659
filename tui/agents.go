package tui

// PLACEHOLDER (engineer F replaces this file): the assets / agents view of
// seed 002, all agents (clusterID 0) or one cluster's, and agent detail.
func newAgentsView(c *Common, clusterID int64) View {
	title := "Agents"
	if clusterID != 0 {
		title = "Connected agents"
	}
	return newPlaceholder(c, title, "agents view")
}
