"""The DORA metrics of `make bench` computed again by DuckDB, in SQL, for comparison.

Usage: python dora_duckdb.py <dir with deploys.csv pushes.csv commits.csv incidents.csv> <from> <to>
(`from` and `to`: the window, epoch seconds, `[from, to)`). Prints one JSON object: the
seconds taken in all (`seconds`), loading the CSV files into in-memory tables
(`load_seconds`) and computing from those tables (`query_seconds`), the process's peak RSS, and per service plus `all` the
same figures the Rust aggregator computes (functions/dora-aggregator/src/metrics.rs), so
that the benchmark can check that both agree before comparing their speed.

Each rule below is the Rust one in SQL:
- change failure: failed deployments, plus successful ones an incident is attributed to
  (the latest success before the incident opened: an as-of join);
- rework: successes that finished while an incident was open (a range join);
- recovery: a failure recovers at the next success (as-of join), an incident when closed;
- lead time: a commit is deployed by the first success, at or after its push, of itself
  or of the head of its push or of a later push (a suffix minimum over push order).
"""
import json
import resource
import sys
import time

import duckdb

LOAD = """
CREATE TABLE deploys AS SELECT * FROM read_csv('{d}/deploys.csv', header = true,
    columns = {{'service': 'INTEGER', 'id': 'BIGINT', 't': 'BIGINT', 'success': 'BOOLEAN', 'sha': 'VARCHAR'}});
CREATE TABLE pushes AS SELECT * FROM read_csv('{d}/pushes.csv', header = true,
    columns = {{'service': 'INTEGER', 'push': 'BIGINT', 't': 'BIGINT', 'head': 'VARCHAR'}});
CREATE TABLE commits AS SELECT * FROM read_csv('{d}/commits.csv', header = true,
    columns = {{'service': 'INTEGER', 'push': 'BIGINT', 'sha': 'VARCHAR', 'committed': 'BIGINT'}});
CREATE TABLE incident_events AS SELECT * FROM read_csv('{d}/incidents.csv', header = true,
    columns = {{'service': 'INTEGER', 'issue': 'BIGINT', 'kind': 'VARCHAR', 't': 'BIGINT'}});
"""

SQL = """
CREATE TABLE incidents AS
SELECT service, issue,
       coalesce(min(t) FILTER (WHERE kind = 'opened'), min(t)) AS opened,
       max(t) FILTER (WHERE kind = 'closed') AS closed
FROM incident_events GROUP BY service, issue;

CREATE TABLE successes AS SELECT service, id, t, sha FROM deploys WHERE success;

-- Incident attribution: the latest success strictly before the incident opened.
CREATE TABLE blamed AS
SELECT DISTINCT s.id
FROM incidents i ASOF JOIN successes s ON i.service = s.service AND i.opened > s.t;

-- Recovery of a failure: the next success after it.
CREATE TABLE failure_recoveries AS
SELECT f.service, (s.t - f.t) / 3600.0 AS hours
FROM (SELECT * FROM deploys WHERE NOT success) f
ASOF JOIN successes s ON f.service = s.service AND f.t <= s.t
WHERE s.t > f.t AND s.t >= {lo} AND s.t < {hi};

CREATE TABLE recoveries AS
SELECT * FROM failure_recoveries
UNION ALL
SELECT service, (closed - opened) / 3600.0 FROM incidents
WHERE closed >= {lo} AND closed < {hi} AND closed >= opened;

-- Lead time. The last push of each head sha, the first push of each commit.
CREATE TABLE heads AS
SELECT service, head AS sha, max(push) AS push FROM pushes GROUP BY ALL;
CREATE TABLE first_commits AS
SELECT c.service, c.push, c.sha, c.committed FROM commits c
QUALIFY row_number() OVER (PARTITION BY c.service, c.sha ORDER BY c.push) = 1;
-- Successes of a head, t or after that head's push: each deploys every push up to it.
CREATE TABLE head_deploys AS
SELECT h.service, h.push, min(s.t) AS t
FROM successes s JOIN heads h ON s.service = h.service AND s.sha = h.sha
JOIN pushes p ON p.service = h.service AND p.push = h.push
WHERE p.t <= s.t GROUP BY ALL;
-- The first head deployment t or after each push, in push order.
CREATE TABLE push_deployed AS
SELECT p.service, p.push,
       min(hd.t) OVER (PARTITION BY p.service ORDER BY p.push DESC ROWS UNBOUNDED PRECEDING) AS t
FROM pushes p LEFT JOIN head_deploys hd ON hd.service = p.service AND hd.push = p.push;
-- Successes of a commit that is no head, t or after its push.
CREATE TABLE commit_deploys AS
SELECT c.service, c.sha, min(s.t) AS t
FROM first_commits c
JOIN pushes p ON p.service = c.service AND p.push = c.push
JOIN successes s ON s.service = c.service AND s.sha = c.sha
ANTI JOIN heads h ON h.service = s.service AND h.sha = s.sha
WHERE s.t >= p.t GROUP BY ALL;
CREATE TABLE lead_times AS
SELECT c.service, (d - c.committed) / 3600.0 AS hours
FROM (
    SELECT c.*, least(pd.t, cd.t) AS d
    FROM first_commits c
    JOIN push_deployed pd ON pd.service = c.service AND pd.push = c.push
    LEFT JOIN commit_deploys cd ON cd.service = c.service AND cd.sha = c.sha
) c
WHERE d >= {lo} AND d < {hi} AND d > c.committed;

-- Rework: successes that finished while an incident was open.
CREATE TABLE rework AS
SELECT s.id FROM successes s
SEMI JOIN incidents i
ON i.service = s.service AND i.opened <= s.t AND (i.closed IS NULL OR s.t < i.closed);

CREATE TABLE counts AS
SELECT d.service,
       count(*) FILTER (WHERE d.success) AS successes,
       count(*) FILTER (WHERE NOT d.success) AS failures,
       count(b.id) AS failed_by_incident,
       count(r.id) AS rework
FROM deploys d LEFT JOIN blamed b ON b.id = d.id LEFT JOIN rework r ON r.id = d.id
WHERE d.t >= {lo} AND d.t < {hi}
GROUP BY d.service;
"""

REPORT = """
WITH lt AS (
    SELECT coalesce(service::VARCHAR, 'all') AS service, count(*) AS n,
           quantile_cont(hours, 0.5) AS median, quantile_cont(hours, 0.9) AS p90
    FROM lead_times GROUP BY ROLLUP (service)
), rc AS (
    SELECT coalesce(service::VARCHAR, 'all') AS service, count(*) AS n,
           quantile_cont(hours, 0.5) AS median
    FROM recoveries GROUP BY ROLLUP (service)
), c AS (
    SELECT coalesce(service::VARCHAR, 'all') AS service, sum(successes) AS successes,
           sum(failures) AS failures, sum(failed_by_incident) AS failed_by_incident,
           sum(rework) AS rework
    FROM counts GROUP BY ROLLUP (service)
)
SELECT c.service, c.successes, c.failures, c.failed_by_incident, c.rework,
       lt.n, lt.median, lt.p90, rc.n, rc.median
FROM c LEFT JOIN lt USING (service) LEFT JOIN rc USING (service)
"""


def main() -> None:
    directory, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    db = duckdb.connect()  # in memory
    db.execute(LOAD.format(d=directory))
    t1 = time.perf_counter()
    db.execute(SQL.format(lo=lo, hi=hi))
    rows = db.execute(REPORT).fetchall()
    t2 = time.perf_counter()
    out = {}
    for service, ok, failed, blamed, rework, lt_n, lt_med, lt_p90, rc_n, rc_med in rows:
        out[service] = {
            "successes": int(ok),
            "failures": int(failed),
            "failed_by_incident": int(blamed),
            "rework": int(rework),
            "lead_times": int(lt_n or 0),
            "lead_median": lt_med,
            "lead_p90": lt_p90,
            "recoveries": int(rc_n or 0),
            "recovery_median": rc_med,
        }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    threads = db.execute("SELECT current_setting('threads')").fetchone()[0]
    print(json.dumps({"threads": threads, "seconds": t2 - t0, "load_seconds": t1 - t0, "query_seconds": t2 - t1, "peak_rss_mib": peak, "duckdb": duckdb.__version__, "metrics": out}))


if __name__ == "__main__":
    main()
