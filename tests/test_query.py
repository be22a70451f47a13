"""condor_q / condor_status output for the exact command lines clients run (clients.md)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from awq import classad, query
from awq.query import UsageError

NOW = 1700000000


def job(cluster, status, **extra):
    ad = {"ClusterId": cluster, "ProcId": 0, "JobStatus": status, "Owner": "vobox",
          "Cmd": "/path/agent.startup.%d" % cluster, "QDate": NOW - 60,
          "EnteredCurrentStatus": NOW - 30, "Arguments": "", "JobPrio": 0}
    ad.update(extra)
    return ad


JOBS = [job(1, 1), job(2, 2, JobCurrentStartDate=NOW - 3661), job(3, 1, JobBatchName="dask-worker"),
        job(4, 5, HoldReasonCode=12), job(5, 2, GridResource="condor ce ce:9619")]


def q(*argv):
    return query.render_q(query.parse_q_args(list(argv)), JOBS, now=NOW, schedd_name="vobox.cern.ch")


def test_alien_counts_one_line_per_job():
    assert len(q("-constraint", "JobStatus==1 || JobStatus==2").splitlines()) == 4
    assert len(q("-constraint", "JobStatus==1").splitlines()) == 2


def test_alien_totals_last_line():
    last = q("vobox", "-totals").splitlines()[-1]
    match = re.search(r"(\d+) idle,\s+(\d+) running,\s+(\d+) held,\s+(\d+) suspended", last)
    assert match.groups() == ("2", "2", "1", "0")
    assert last.startswith("Total for all users: 5 jobs;")


def test_alien_format_with_undefined_attributes():
    out = q("-format", "%d ", "ClusterId", "-format", "HoldReason=%s ", "HoldReasonCode",
            "-format", "%s ", "GridJobId", "-format", "%s \\n", "Cmd")
    lines = out.splitlines()
    assert lines[0] == "1 /path/agent.startup.1 "
    assert lines[3] == "4 HoldReason=12 /path/agent.startup.4 "
    only_active = q("-constraint", "JobStatus==1 || JobStatus==2", "-format", "%d ", "ClusterId",
                    "-format", "%s \\n", "Cmd")
    assert only_active.splitlines() == ["%d /path/agent.startup.%d " % (c, c) for c in (1, 2, 3, 5)]


def test_jalien_af_with_missing_attribute():
    lines = q("-const", "JobStatus < 3", "-af", "JobStatus", "GridResource").splitlines()
    parsed = [re.match(r"^\s*([12]).*\s(\S+)", line).groups() for line in lines]
    assert parsed == [("1", "undefined"), ("2", "undefined"), ("1", "undefined"), ("2", "ce:9619")]


def test_tardis_af_tab_separated():
    rows = list(csv.reader(io.StringIO(q("-af:t", "Owner", "JobStatus", "ClusterId", "ProcId")),
                           delimiter="\t"))
    assert rows[0] == ["vobox", "1", "1", "0"] and len(rows) == 5


def test_af_modifiers():
    assert q("-af:jh", "JobStatus").splitlines()[:2] == ["ID JobStatus", "1.0 1"]
    lines = q("-af:lj", "JobStatus").splitlines()
    assert lines[0] == "1.0 JobStatus = 1"
    assert q("-af:,", "ClusterId", "JobStatus").splitlines()[0] == "1, 1"
    assert q("-af:r", "Owner").splitlines()[0] == '"vobox"'


def test_ids_and_owners_select():
    # -af takes every argument up to the next option, as HTCondor's does.
    assert q("3", "-af", "ClusterId").split() == ["3"]
    assert q("2.0", "4", "-af", "ClusterId").split() == ["2", "4"]
    assert q("nobody", "-af", "ClusterId") == ""


def test_default_table_and_batch_view():
    table = q()
    assert "-- Schedd: vobox.cern.ch" in table
    assert re.search(r"^2\.0\s+vobox .* 0\+01:01:01 R ", table, re.M)
    assert table.rstrip().splitlines()[-1].startswith("Total for all users: 5 jobs")
    assert "dask-worker" in q("-batch")


def test_long_and_json():
    long_text = query.render_q(query.parse_q_args(["-l", "1"]),
                               [job(1, 1, PeriodicRemove=classad.Expr("CurrentTime - QDate > 9"))],
                               now=NOW, schedd_name="x")
    assert "PeriodicRemove = CurrentTime - QDate > 9\n" in long_text
    assert 'Owner = "vobox"\n' in long_text
    data = json.loads(q("-json", "5"))
    assert data[0]["GridResource"] == "condor ce ce:9619"


@pytest.mark.parametrize("argv", [["-constraint"], ["-bogus"], ["-af"], ["-format", "%d"],
                                  ["-constraint", "JobStatus =="], ["1.x"]])
def test_usage_errors(argv):
    with pytest.raises(UsageError):
        query.parse_q_args(argv)


def status(*argv):
    return query.render_status(query.parse_status_args(list(argv)), JOBS, now=NOW,
                               schedd_name="vobox.cern.ch")


def test_old_jalien_condor_status_forms():
    assert re.match(r"(\d+)\s+(\d+)", status("-schedd", "-af", "totalRunningJobs",
                                             "totalIdleJobs")).groups() == ("2", "2")
    assert status("-schedd", "-af", "totalIdleJobs").strip() == "2"
    assert "vobox.cern.ch" in status("-schedd")
    assert status() == ""


def test_job_data_cannot_drive_the_terminal_in_human_tables():
    evil = [job(9, 1, Cmd="/x/agent\x1b[31mred", Arguments="a\nb", JobBatchName="b\x1b]0;title\x07")]
    for argv in ([], ["-batch"]):
        text = query.render_q(query.parse_q_args(argv), evil, now=NOW, schedd_name="s")
        assert "\x1b" not in text and "\x07" not in text
    table = query.render_q(query.parse_q_args([]), evil, now=NOW, schedd_name="s")
    assert "agent\\x1b[31mred a\\x0ab" in table
    # -af prints the value itself, as HTCondor does: a client asked for exactly that.
    raw = query.render_q(query.parse_q_args(["-af", "Arguments"]), evil, now=NOW, schedd_name="s")
    assert raw == "a\nb\n"


def test_af_lng_is_what_law_parses():
    text = q("1", "2", "-af:lng", "ClusterId", "JobStatus")
    assert text == "ClusterId = 1\nJobStatus = 1\n\nClusterId = 2\nJobStatus = 2\n\n"
    assert q("1", "-af:,", "ClusterId", "JobStatus") == "1, 1\n"
    assert q("1", "-af:tn", "ClusterId", "JobStatus") == "1\n1\n"


def test_hold_shows_htcondors_held_table_with_the_reason():
    held = [job(1, 1), job(4, 5, HoldReason="The job attribute OnExitHold expression "
                            "'ExitCode == 3' evaluated to TRUE", HoldReasonCode=3),
            job(6, 5, HoldReason="bad\nline", Owner="someone-with-a-long-name")]
    text = query.render_q(query.parse_q_args(["-hold"]), held, now=NOW, schedd_name="s")
    lines = text.splitlines()
    header = lines.index(" ID          OWNER          HELD_SINCE  HOLD_REASON")
    assert lines[0:2] == ["", ""] and lines[2].startswith("-- Schedd: s : <127.0.0.1> @ ")
    since = query._date(NOW - 30, NOW)
    assert lines[header + 1] == ("4.0          vobox          %11s The job attribute OnExitHold "
                                 "expression 'ExitCode == 3' evaluated to TRUE" % since)
    assert lines[header + 2].startswith("6.0          someone-with-a ")
    assert lines[header + 2].endswith(" bad\\x0aline")
    assert lines[-1].startswith("Total for all users: 3 jobs;")
    assert "2 jobs; 0 completed, 0 removed, 0 idle, 0 running, 2 held" in text
    # Counting stays one line per job, with the filter as a constraint, for -hold -totals too.
    assert "2 held" in query.render_q(query.parse_q_args(["-hold", "-totals"]), held, now=NOW,
                                      schedd_name="s")


def test_job_table_cells_are_each_rows_own_text():
    """_each_value (keyed by the columns that vary) and _id_cells (one cell after the
    cluster when every proc is the same) give, row for row, what formatting each row
    alone gives, on random columns with constants, repeats, numbers of mixed kinds and
    unhashable values."""
    import random
    rng = random.Random(50)
    pools = [["alice"], ["alice", "bob"], [1, 2, None], [1, True, 1.0], [0], [[1], [2]],
             [None], ["x" * 20, "y"]]
    for _ in range(300):
        rows = rng.randint(0, 12)
        columns = [[rng.choice(pool) for _ in range(rows)]
                   for pool in rng.sample(pools, rng.randint(1, 4))]
        text_of = lambda row: repr([(type(v).__name__, v) for v in row])   # noqa: E731
        assert query._each_value(columns, text_of) == [text_of(r) for r in zip(*columns)]
        clusters = [rng.choice([1, 22, 4444, 10 ** 9, 10 ** 12]) for _ in range(rows)]
        procs = [rng.choice(rng.choice([[0], [0, 7], [123], ["x"]])) for _ in range(rows)] \
            if rng.random() < 0.5 else [rng.choice([0, 5, 10 ** 6])] * rows
        cells = query._id_cells(clusters, procs)
        lines = ["".join(parts) for parts in zip(*cells)]
        want = [query._id_text(c, p) for c, p in zip(clusters, procs)]
        assert lines == [text + " " * max(1, 13 - len(text)) for text in want]


def test_job_table_from_a_snapshots_hints_is_the_table_from_the_jobs_themselves():
    """The snapshot's hints (types, one value throughout, the ID cells) and the records
    merged after it, with removals marked on top, give the bytes the jobs as plain ads
    give, for the default table's forms, on random queues."""
    import random
    from awq import snapshot
    from awq.jobset import JobSet
    rng = random.Random(23)
    pools = {"Owner": ["alice", "bob", None, 7], "QDate": [NOW - 60, NOW - 86400 * 3, None, 1.5],
             "JobCurrentStartDate": [None, NOW - 3661, NOW - 5, True],
             "JobStatus": [1, 2, 2, 3, 4, 5, 1.0], "JobPrio": [0, 5, None, -3],
             "Cmd": ["/bin/true", "/a/b/agent.sh", "x" * 80, None, "\x1b[2J"],
             "Arguments": ["", "-a b", None, 3], "ProcId": [0, 0, 1, 17],
             "HoldReason": [None, "why"], "EnteredCurrentStatus": [NOW - 10, None]}
    forms = [[], ["-constraint", "JobStatus==1 || JobStatus==2"], ["-constraint", "JobStatus==1"],
             ["-hold"], ["-totals"], ["-constraint", "JobStatus==2", "-totals"]]
    for _ in range(150):
        constant = {name: rng.choice(pool) for name, pool in pools.items() if rng.random() < 0.5}

        def make(cluster):
            ad = {"ClusterId": cluster}
            for name, pool in pools.items():
                value = constant.get(name, rng.choice(pool)) if name in constant \
                    or rng.random() < 0.9 else None
                if value is not None:
                    ad[name] = value
            ad.setdefault("ProcId", 0)
            return ad

        clusters = sorted(rng.sample(range(1, 10 ** rng.randint(2, 7)), rng.randint(0, 30)))
        in_snapshot = [make(c) for c in clusters]
        table = {(ad["ClusterId"], ad["ProcId"]): ad for ad in in_snapshot}
        top = max(clusters, default=0)
        records = [make(top + 1 + n) for n in range(rng.randint(0, 3))]
        job_set = JobSet(snapshot.open_columns(snapshot.encode({"jobs": table})), records)
        ads = [dict(table[jid]) for jid in sorted(table)] + [dict(ad) for ad in records]
        for index in rng.sample(range(len(ads)), min(len(ads), rng.randint(0, 2))):
            job_set.set_value(index, "JobStatus", 3)   # as a removal request shows it
            ads[index]["JobStatus"] = 3
        for argv in forms:
            opts = query.parse_q_args(argv)
            assert query.render_q(opts, job_set, now=NOW, schedd_name="s") == \
                query.render_q(opts, ads, now=NOW, schedd_name="s"), (argv, ads)


def test_each_value_with_what_is_known_of_the_columns_is_each_rows_own_text():
    import random
    rng = random.Random(51)
    pools = [["alice"], ["alice", "bob"], [1, 2, None], [1, True, 1.0], [0], [None]]
    for _ in range(300):
        rows = rng.randint(1, 12)
        columns = [[rng.choice(pool) for _ in range(rows)]
                   for pool in rng.sample(pools, rng.randint(1, 4))]
        kinds = [frozenset(map(type, c)) if rng.random() < 0.5 else None for c in columns]
        sames = [(c[0],) if c.count(c[0]) == len(c) and len(set(map(type, c))) == 1
                 and rng.random() < 0.5 else None for c in columns]
        text_of = lambda row: repr([(type(v).__name__, v) for v in row])   # noqa: E731
        assert query._each_value(columns, text_of, kinds, sames) == \
            [text_of(r) for r in zip(*columns)]


CHUNKED_FORMS = [[], ["-constraint", "JobStatus==1 || JobStatus==2"], ["-const", "JobStatus==1"],
                 ["-totals"], ["alice", "-totals"], ["-limit", "7"], ["-hold"], ["-batch"],
                 ["-format", "%d ", "ClusterId", "-format", "HoldReason=%s ", "HoldReasonCode",
                  "-format", "%s \\n", "Cmd"], ["-format", "%s|", "Owner"],
                 ["-const", "JobStatus < 3", "-af", "JobStatus", "GridResource"],
                 ["-af:jh", "ClusterId", "Cmd"], ["-af:lg,", "Owner", "JobPrio"],
                 ["-af:tV", "Owner", "JobStatus"], ["-af:nj", "Cmd"], ["-l", "-limit", "3"],
                 ["-json", "-const", "JobStatus == 2"], ["2", "alice", "-af", "ClusterId"],
                 ["-format", "%d|", "JobPrio", "-format", "%s\\n", "ClusterId"],
                 ["-af", "JobPrio", "Cmd", "JobCurrentStartDate"], ["-const", "1 || 2"]]


def random_queue(rng, size):
    pools = {"Owner": ["alice", "bob"], "JobStatus": [1, 2, 2, 5], "ProcId": [0, 0, 3],
             "JobCurrentStartDate": [None, NOW - 3661, NOW - 5], "JobPrio": [0, 5, 1.0, True],
             "Cmd": ["/bin/true", "/a/agent.sh"], "HoldReasonCode": [None, 12],
             "GridResource": [None, "condor ce ce:9619"]}
    constant = {name: rng.choice(pool) for name, pool in pools.items() if rng.random() < 0.4}
    ads = []
    for cluster in sorted(rng.sample(range(1, 10 ** rng.randint(2, 6)), size)):
        ad = {"ClusterId": cluster, "QDate": NOW - 60, "Arguments": ""}
        for name, pool in pools.items():
            value = constant[name] if name in constant else rng.choice(pool)
            if value is not None:
                ad[name] = value
        ads.append(ad)
    return ads


def test_an_answer_made_a_chunk_at_a_time_is_the_answer_made_at_once(monkeypatch):
    """condor_q's answer, CHUNK_ROWS lines at a time, from the snapshot's columns and
    hints and from plain ads, is the text made in one piece, for chunks of any size."""
    import random
    from awq import snapshot
    from awq.jobset import JobSet
    rng = random.Random(2048)
    for _ in range(40):
        ads = random_queue(rng, rng.randint(0, 40))
        table = {(ad["ClusterId"], ad["ProcId"]): ad for ad in ads}
        ads = [table[jid] for jid in sorted(table)]
        columns = snapshot.open_columns(snapshot.encode({"jobs": table}))
        for argv in CHUNKED_FORMS:
            opts = query.parse_q_args(argv)
            monkeypatch.setattr(query, "CHUNK_ROWS", 10 ** 9)
            whole = query.render_q(opts, ads, now=NOW, schedd_name="s")
            for rows in (1, 2, 5, 16):
                monkeypatch.setattr(query, "CHUNK_ROWS", rows)
                for job_list in (ads, JobSet(columns), JobSet(columns, [])):
                    assert query.render_q(opts, job_list, now=NOW, schedd_name="s") == whole, \
                        (argv, rows, ads)


def test_totals_count_statuses_of_every_kind_as_a_list_counts_them():
    for statuses in ([1, 2, 2, 5], [], [1, True, 1.0, 2], [1, None, 3], [300, 1, -1, 4],
                     [7, 7, 6, 4, 3, 0, 255]):
        want = "%d jobs; %d completed, %d removed, %d idle, %d running, %d held, %d suspended" \
            % ((len(statuses),) + tuple(statuses.count(s) for s in (4, 3, 1, 2, 5, 7)))
        assert query._counts(statuses) == want, statuses


def test_targets_over_columns_are_target_matches():
    import random
    from awq import jobs
    rng = random.Random(99)
    for _ in range(200):
        ads = [{"ClusterId": rng.choice([1, 2, 3, "x"]), "ProcId": rng.choice([0, 1, None]),
                "Owner": rng.choice(["alice", "bob", None, 7])} for _ in range(rng.randint(0, 12))]
        ads = [{k: v for k, v in ad.items() if v is not None} for ad in ads]
        targets = [rng.choice([jobs.Target(owner="alice"), jobs.Target(owner="carol"),
                               jobs.Target(cluster=2), jobs.Target(cluster=3, proc=1)])
                   for _ in range(rng.randint(1, 3))]
        indices = sorted(rng.sample(range(len(ads)), rng.randint(0, len(ads))))
        job_set = query.as_job_set(ads)
        assert list(query._targeted(targets, job_set, indices)) == \
            [i for i in indices if any(t.matches(ads[i]) for t in targets)], (ads, targets)


def test_write_out_puts_the_chunks_on_the_descriptor_as_the_stream_would(tmp_path, monkeypatch):
    from awq.cli import common
    path = tmp_path / "out"
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as stream:
        monkeypatch.setattr("sys.stdout", stream)
        stream.write("first ")   # through the stream before: it comes first
        common.write_out(iter(["a\n", "", "é\udcff\n" * 3]))
        common.write_out("last\n")
    assert path.read_bytes() == b"first a\n" + b"\xc3\xa9\xff\n" * 3 + b"last\n"


def test_lines_of_one_table_are_each_rows_own_text():
    """The table's line texts, their parts kept by value and type across rows, are what
    formatting each row alone gives: 1, 1.0 and true print apart, lists are no key."""
    import random
    rng = random.Random(64)
    pools = [["alice", "bob", None, 7], [NOW - 60, 1.0 * (NOW - 60), None, True],
             [None, NOW - 3661, NOW - 5, 1.5], [1, 2, 2.0, True, 5, None],
             [0, 1, 1.0, True, None, -3], ["/bin/true", "/a/b/agent.sh", None, [1]],
             ["", "-a b", None, 3, [2]]]
    lines, padded = query._LinesOfOneTable(NOW), query._LinesOfOneTable(NOW, padded=True)
    for _ in range(3000):
        key = tuple(rng.choice(pool) for pool in pools)
        assert lines(key) == query._rest_of_line(key, NOW), key
        length = rng.choice([3, 7, 12, 13, 20])
        assert padded((length,) + key) == \
            " " * max(1, 13 - length) + query._rest_of_line(key, NOW), key
