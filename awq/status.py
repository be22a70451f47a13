"""`alien_work_queue --status`: is the master healthy? Pure: spool facts in, a report out."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from awq import jobs
from awq.jobs import Job, JobStatus

HEALTHY, DOWN, DEGRADED = 0, 1, 2
NO_WORKERS_GRACE = 600.0     # s of idle jobs and no worker before we call it degraded
HOUR = 3600.0


def health_report(*, queue: Sequence[Job], history: Sequence[Job], master_alive: bool,
                  master_pid: Optional[int], heartbeat: Optional[float],
                  master_status: Mapping[str, Any], spool_root: str, spool_bytes: int,
                  now: float) -> Dict[str, Any]:
    """Everything an admin (or a Nagios check) asks about, with `health` 0, 1 or 2."""
    by_status = jobs.count_by_status(queue)
    idle = [j for j in queue if j.get("JobStatus") == JobStatus.IDLE]
    stats = master_status.get("workqueue") or {}
    report: Dict[str, Any] = {
        "master": _master_part(master_alive, master_pid, heartbeat, master_status, now),
        "jobs": {jobs.status_name(s): by_status.get(s, 0) for s in jobs.ALL_STATES},
        "oldest_idle_seconds": int(now - min(_entered(j, now) for j in idle)) if idle else 0,
        "completed_last_hour": sum(1 for j in history if j.get("JobStatus") == JobStatus.COMPLETED
                                   and _number(j.get("CompletionDate")) >= now - HOUR),
        "held_last_hour": sum(1 for j in queue if j.get("JobStatus") == JobStatus.HELD
                              and _entered(j, now) >= now - HOUR),
        "workers": {"connected": stats.get("workers_connected", 0),
                    "busy": stats.get("workers_busy", 0),
                    "cores_in_use": stats.get("committed_cores", 0),
                    "cores_total": stats.get("total_cores", 0),
                    "lost_since_start": stats.get("total_workers_lost", 0)},
        "spool": {"path": spool_root, "bytes": spool_bytes},
    }
    report["health"], report["problems"] = _health(report, master_status, now)
    return report


def _master_part(alive: bool, pid: Optional[int], heartbeat: Optional[float],
                 status: Mapping[str, Any], now: float) -> Dict[str, Any]:
    part: Dict[str, Any] = {"running": alive, "pid": pid if alive else None,
                            "port": status.get("port"), "project": status.get("project") or None}
    if alive and status.get("started"):
        part["uptime_seconds"] = int(now - float(status["started"]))
    elif not alive:
        part["down_since"] = int(heartbeat) if heartbeat else None
    return part


def _health(report: Mapping[str, Any], status: Mapping[str, Any], now: float) -> tuple:
    if not report["master"]["running"]:
        return DOWN, ["the master is not running"]
    problems: List[str] = []
    seen = float(status.get("workers_seen") or 0)
    started = float(status.get("started") or now)
    quiet_since = max(seen, started)
    if report["jobs"]["idle"] and not report["workers"]["connected"] \
            and now - quiet_since >= NO_WORKERS_GRACE:
        problems.append("%d idle jobs and no worker for %d s"
                        % (report["jobs"]["idle"], now - quiet_since))
    return (DEGRADED if problems else HEALTHY), problems


def _entered(job: Job, now: float) -> float:
    value = _number(job.get("EnteredCurrentStatus"))
    return value if value else now


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def render_report(report: Mapping[str, Any]) -> str:
    master = report["master"]
    if master["running"]:
        head = "master: running, PID %s, up %s, port %s%s" % (
            master["pid"], _duration(master.get("uptime_seconds", 0)), master.get("port"),
            ", project %s" % master["project"] if master.get("project") else "")
    else:
        since = master.get("down_since")
        head = "master: DOWN%s" % (" since %s" % time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "")
    counts = ", ".join("%d %s" % (n, name) for name, n in report["jobs"].items() if n)
    workers = report["workers"]
    lines = [
        head,
        "jobs: %s" % (counts or "none"),
        "oldest idle job: %s" % (_duration(report["oldest_idle_seconds"])
                                 if report["jobs"]["idle"] else "-"),
        "last hour: %d completed, %d held" % (report["completed_last_hour"],
                                              report["held_last_hour"]),
        "workers: %d connected, %d busy, %d of %d cores in use; %d lost since the master "
        "started" % (workers["connected"], workers["busy"], workers["cores_in_use"],
                     workers["cores_total"], workers.get("lost_since_start", 0)),
        "spool: %s (%.1f MB)" % (report["spool"]["path"], report["spool"]["bytes"] / 1e6),
        "health: %s" % (["OK", "DOWN", "DEGRADED"][report["health"]]
                        + "".join("; " + p for p in report["problems"])),
    ]
    return "".join(line + "\n" for line in lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    return ("%dd " % days if days else "") + "%02d:%02d:%02d" % (
        rest // 3600, rest % 3600 // 60, rest % 60)
