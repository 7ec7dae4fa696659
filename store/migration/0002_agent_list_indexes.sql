-- Indexes for ListAgents on large fleets (BenchmarkListAgents, 100,000 agents).
--
-- ListAgents orders by the chosen column and then by g.id, and LEFT JOINs
-- clusters on g.cluster_id. With the 0001 indexes the id tie-break forced a
-- temp B-tree over every matching row, and both the join and that sort read
-- the table row of every entry, including the rows an OFFSET skips. Putting
-- id (and cluster_id) into the sort indexes lets SQLite walk the index in
-- final order and stop after LIMIT rows, touching the table only for the
-- rows it returns.

-- Default sort (hostname), all accounts. ips is included so that the
-- substring filter (hostname or IP LIKE) is checked on the index entry
-- before the row is read, and so that COUNT(*) for it scans the index.
DROP INDEX agents_hostname;
CREATE INDEX agents_hostname ON agents(hostname, id, cluster_id, ips);

DROP INDEX agents_account_host;
CREATE INDEX agents_account_host ON agents(account_id, hostname, id, cluster_id);

DROP INDEX agents_cluster_host;
CREATE INDEX agents_cluster_host ON agents(cluster_id, hostname, id);

-- Sort by last check-in (newest first in the dashboard), all accounts:
-- there was no index on last_checkin alone, so this sorted the whole table.
CREATE INDEX agents_seen ON agents(last_checkin, id, cluster_id);

DROP INDEX agents_account_seen;
CREATE INDEX agents_account_seen ON agents(account_id, last_checkin, id, cluster_id);

-- Online agents of a cluster (cluster status counts, ListAgents with a
-- cluster and a status): account_id makes the count index-only. Without it
-- SQLite preferred agents_account_seen and read the rows of the whole
-- account to test cluster_id.
DROP INDEX agents_cluster_seen;
CREATE INDEX agents_cluster_seen ON agents(cluster_id, last_checkin, account_id);
