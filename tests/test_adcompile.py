"""Column-wise evaluation (awq.adcompile) must give classad.evaluate's answer for every job."""

from __future__ import annotations

import math
import random

from awq import adcompile, classad, snapshot
from awq.jobset import JobSet

NOW = 1_700_000_000
ATTRS = ["JobStatus", "ClusterId", "Owner", "RequestCpus", "Ratio", "Flag", "Missing",
         "Chain", "jobstatus"]
LITERALS = ["1", "2", "0", "-3", "2.5", "0.0", "true", "false", "undefined", "error",
            '"alice"', '"ALICE"', '""', "1e3"]
BINARY = ["==", "!=", "<", "<=", ">", ">=", "=?=", "=!=", "&&", "||", "+", "-", "*", "/", "%",
          "&", "|", "^", "<<", ">>", "is", "isnt"]


def random_expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice(ATTRS + LITERALS + ["MY.JobStatus", "TARGET.Owner", "CurrentTime"])
    if roll < 0.75:
        return "(%s %s %s)" % (random_expression(rng, depth + 1), rng.choice(BINARY),
                               random_expression(rng, depth + 1))
    if roll < 0.85:
        return "%s%s" % (rng.choice(["!", "-", "~"]), random_expression(rng, depth + 1))
    if roll < 0.95:
        return "(%s ? %s : %s)" % tuple(random_expression(rng, depth + 1) for _ in range(3))
    return "isUndefined(%s)" % random_expression(rng, depth + 1)


def random_job(rng: random.Random, cluster: int) -> dict:
    job = {"ClusterId": cluster, "ProcId": 0}
    choices = {
        "JobStatus": [1, 2, 5, 7, True, "2"],
        "Owner": ["alice", "ALICE", "bob", ""],
        "RequestCpus": [1, 4, 0, -1, 2.5],
        "Ratio": [0.5, 1.0, math.nan, math.inf, 3],
        "Flag": [True, False, 0, 1, "yes"],
        "Chain": [classad.Expr("RequestCpus * 2"), classad.Expr("Chain + 1"), 7, classad.UNDEFINED],
    }
    for name, values in choices.items():
        if rng.random() < 0.8:
            job[name] = rng.choice(values)
    return job


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or a is b


def test_every_expression_gives_the_general_evaluators_answer_for_every_job():
    rng = random.Random(8)
    ads = [random_job(rng, cluster) for cluster in range(1, 41)]
    data = snapshot.encode({"jobs": {(ad["ClusterId"], 0): ad for ad in ads}})
    from_snapshot = JobSet(snapshot.open_columns(data))
    from_ads = JobSet.from_ads(ads)
    checked = 0
    for _ in range(1500):
        text = random_expression(rng)
        expected = [classad.evaluate(text, ad, NOW) for ad in ads]
        for job_set in (from_snapshot, from_ads):
            got = adcompile.evaluate_all(text, job_set, NOW, range(len(ads)))
            for ad, want, have in zip(ads, expected, got):
                assert same(want, have), (text, ad, want, have)
                checked += 1
    assert checked == 1500 * 2 * 40


def test_select_keeps_the_jobs_whose_constraints_are_all_true():
    ads = [{"ClusterId": c, "ProcId": 0, "JobStatus": 1 + c % 3, "Owner": "u%d" % (c % 2)}
           for c in range(1, 31)]
    job_set = JobSet.from_ads(ads)
    picked = adcompile.select(job_set, ["JobStatus == 1 || JobStatus == 2", 'Owner == "U1"'],
                              NOW, range(len(ads)))
    assert picked == [i for i, ad in enumerate(ads)
                      if ad["JobStatus"] in (1, 2) and ad["Owner"] == "u1"]
    assert picked  # the case-insensitive string comparison kept some


def test_an_attribute_holding_an_expression_is_followed_for_that_job_only():
    ads = [{"ClusterId": 1, "ProcId": 0, "Limit": classad.Expr("RequestCpus * 2"), "RequestCpus": 3},
           {"ClusterId": 2, "ProcId": 0, "Limit": 5, "RequestCpus": 3}]
    job_set = JobSet(snapshot.open_columns(snapshot.encode(
        {"jobs": {(ad["ClusterId"], 0): ad for ad in ads}})))
    assert adcompile.evaluate_all("Limit + 1", job_set, NOW, range(2)) == [7, 6]


def test_a_very_deep_expression_falls_back_without_raising():
    ads = [{"ClusterId": 1, "ProcId": 0, "X": 1}]
    text = "(" * 35 + "X" + ")" * 35 + " + 1" * 3000   # as deep as the parser accepts
    value = adcompile.evaluate_all(text, JobSet.from_ads(ads), NOW, range(1))
    assert value == [classad.evaluate(text, ads[0], NOW)]


STATUS_LITERALS = ["0", "1", "2", "3", "4", "5", "7", "2.0", "true", "undefined", '"2"']
STATUS_NAMES = ["JobStatus", "jobstatus", "JOBSTATUS"]


def status_expression(rng: random.Random, depth: int = 0) -> str:
    """An expression of JobStatus alone, as AliEn and JAliEn write them and beyond."""
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice(STATUS_NAMES + STATUS_LITERALS)
    if roll < 0.8:
        return "(%s %s %s)" % (status_expression(rng, depth + 1), rng.choice(BINARY),
                               status_expression(rng, depth + 1))
    if roll < 0.9:
        return "%s%s" % (rng.choice(["!", "-", "~"]), status_expression(rng, depth + 1))
    return "(%s ? %s : %s)" % tuple(status_expression(rng, depth + 1) for _ in range(3))


def test_an_expression_of_one_attribute_answered_per_distinct_value_is_the_general_answer():
    """The per-distinct-value path (a queue whose JobStatus is ints, or strings, with jobs
    lacking it) gives classad.evaluate's answer for every job, and select keeps the same
    jobs as the general evaluator; so does a queue it does not qualify for (too many
    values), which goes the column way."""
    rng = random.Random(23)
    checked = 0
    for statuses in ([1, 2, 3, 4, 5, 7, None], ["1", "2", "idle", None],
                     list(range(adcompile.DISTINCT_VALUES_AT_MOST + 5))):
        ads = []
        for cluster in range(1, 81):
            ad = {"ClusterId": cluster, "ProcId": 0}
            status = rng.choice(statuses)
            if status is not None:
                ad["JobStatus"] = status
            ads.append(ad)
        data = snapshot.encode({"jobs": {(ad["ClusterId"], 0): ad for ad in ads}})
        for job_set in (JobSet(snapshot.open_columns(data)), JobSet.from_ads(ads)):
            for _ in range(300):
                text = status_expression(rng)
                expected = [classad.evaluate(text, ad, NOW) for ad in ads]
                some = sorted(rng.sample(range(len(ads)), 30))
                for indices in (range(len(ads)), some):
                    got = adcompile.evaluate_all(text, job_set, NOW, indices)
                    for index, have in zip(indices, got):
                        assert same(expected[index], have), (text, ads[index], have)
                        checked += 1
                    assert list(adcompile.select(job_set, [text], NOW, indices)) == \
                        [i for i in indices if classad.is_true(expected[i])], text
    assert checked == 3 * 2 * 300 * (80 + 30)


def test_a_constraint_every_job_meets_keeps_the_indices_themselves():
    """No list is made for a constraint every job meets (condor_q's `JobStatus==1 ||
    JobStatus==2` over an active queue); one that reads no attribute is evaluated once,
    true or false for every job alike."""
    ads = [{"ClusterId": c, "ProcId": 0, "JobStatus": 1 + c % 2} for c in range(1, 41)]
    job_set = JobSet.from_ads(ads)
    every = range(len(ads))
    for text in ("JobStatus == 1 || JobStatus == 2", "1 || 2", "true", "7", "JobStatus < 3",
                 "Nobody =?= undefined"):
        assert adcompile.select(job_set, [text], NOW, every) is every, text
    for text in ("false", "0", "1 / 0", "undefined", "Nobody", "Nobody == 1", '"yes"'):
        assert list(adcompile.select(job_set, [text], NOW, every)) == [], text
    assert list(adcompile.select(job_set, ["JobStatus == 2"], NOW, every)) == \
        [i for i, ad in enumerate(ads) if ad["JobStatus"] == 2]
    some = [1, 4, 5, 30]
    assert list(adcompile.select(job_set, ["JobStatus == 2", "2 > 1"], NOW, some)) == \
        [i for i in some if ads[i]["JobStatus"] == 2]
