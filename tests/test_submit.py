"""The submit language: the descriptions real clients write, quoting, macros, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from awq import classad, jobs, submit
from awq.submit import SubmitError

CONTEXT = dict(cwd="/home/vobox", environ={"HOME": "/home/vobox", "X509_USER_PROXY": "/tmp/px",
                                          "SITE": "Torino"},
               owner="vobox", uid=1000, now=1700000000)


def build(text: str, cluster: int = 7, **kwargs) -> list:
    return submit.build_jobs(submit.parse_description(text, **kwargs), cluster_id=cluster,
                             **CONTEXT)


def one(text: str, **kwargs) -> dict:
    job_list = build(text, **kwargs)
    assert len(job_list) == 1
    return job_list[0]


def test_alien_description_from_stdin():
    job = one(
        "executable = /path/agent.startup.1234\narguments = \n"
        "grid_resource=condor ce.host ce.host:9619\nrequirements=(Arch == \"X86_64\")\n"
        "output = /logdir/tmpfile.out\nerror  = /logdir/tmpfile.err\nlog    = /logdir/tmpfile.log\n"
        "environment=CONDOR_ID=$(Cluster).$(Process);ALIEN_CM_AS_LDAP_PROXY=host:8084;"
        "ALIEN_JOBAGENT_ID=1234.0;ALIEN_ALICE_CM_AS_LDAP_PROXY=host:8084\nqueue\n")
    assert job["Cmd"] == "/path/agent.startup.1234"
    assert jobs.argv_of(job) == []
    assert jobs.environment_of(job) == {
        "CONDOR_ID": "7.0", "ALIEN_CM_AS_LDAP_PROXY": "host:8084",
        "ALIEN_JOBAGENT_ID": "1234.0", "ALIEN_ALICE_CM_AS_LDAP_PROXY": "host:8084"}
    assert (job["Out"], job["Err"], job["UserLog"]) == \
        ("/logdir/tmpfile.out", "/logdir/tmpfile.err", "/logdir/tmpfile.log")
    assert "GridResource" not in job  # as in HTCondor: a grid resource is for the grid universe
    assert job["Requirements"] == classad.Expr('(Arch == "X86_64")')
    assert (job["ClusterId"], job["ProcId"], job["JobStatus"], job["Owner"]) == (7, 0, 1, "vobox")


def test_jalien_description_from_a_file():
    job = one(
        "cmd = /path/to/jobagent-script\noutput = out/jobagent.out\nerror = out/jobagent.err\n"
        "log = out/jobagent.log\n+TransferOutput = \"\"\n"
        "periodic_hold = JobStatus == 1 && GridJobStatus =?= undefined && CurrentTime - "
        "EnteredCurrentStatus > 1800 || JobStatus <= 2 && CurrentTime - EnteredCurrentStatus > 172800\n"
        "periodic_remove = CurrentTime - QDate > 259200\nuniverse = grid\n+WantJobRouter = True\n"
        "job_lease_duration = 7200\nShouldTransferFiles = YES\nuse_x509userproxy = true\n"
        "environment = \"ALIEN_CM_AS_LDAP_PROXY='host:port'\"\nqueue 1\n")
    assert job["Cmd"] == "/path/to/jobagent-script"
    assert job["Out"] == "/home/vobox/out/jobagent.out"
    assert job["TransferOutput"] == "" and job["WantJobRouter"] is True
    assert job["JobUniverse"] == 9 and job["JobLeaseDuration"] == 7200
    assert job["ShouldTransferFiles"] == "YES"
    assert job["X509UserProxy"] == "/tmp/px"
    assert isinstance(job["PeriodicRemove"], classad.Expr)
    assert classad.evaluate(job["PeriodicRemove"], job, now=1700000000 + 259201) is True
    assert jobs.environment_of(job) == {"ALIEN_CM_AS_LDAP_PROXY": "host:port"}


def test_dask_description():
    job_list = build(
        "#!/usr/bin/env bash\n\nMY.DaskWorkerName = \"htcondor--$F(MY.JobId)--\"\n"
        "batch_name = dask-worker\nRequestCpus = MY.DaskWorkerCores\n"
        "RequestMemory = floor(MY.DaskWorkerMemory / 1048576)\n"
        "RequestDisk = floor(MY.DaskWorkerDisk / 1024)\nMY.JobId = \"$(ClusterId).$(ProcId)\"\n"
        "MY.DaskWorkerCores = 1\nMY.DaskWorkerMemory = 1000000000\nMY.DaskWorkerDisk = 1000000000\n\n"
        "Arguments = \"-c 'python -m distributed.cli.dask_worker tcp://127.0.0.1:8786 --nthreads 1'\"\n"
        "Executable = /bin/sh\n\nQueue\n")
    job = job_list[0]
    assert job["DaskWorkerName"] == "htcondor--7.0--"
    assert job["JobId"] == "7.0" and job["JobBatchName"] == "dask-worker"
    assert jobs.argv_of(job) == ["-c", "python -m distributed.cli.dask_worker "
                                         "tcp://127.0.0.1:8786 --nthreads 1"]
    assert classad.evaluate_attr(job, "RequestMemory") == 953
    assert classad.evaluate_attr(job, "RequestCpus") == 1


@pytest.mark.parametrize("line, argv", [
    ("arguments = a b  c", ["a", "b", "c"]),
    ("arguments = \"'one arg' two\"", ["one arg", "two"]),
    ("arguments = \"'it''s' \"\"quoted\"\"\"", ["it's", '"quoted"']),
    ("args = -x \\\"y\\\"", ["-x", '"y"']),
    ("arguments = \"''\"", [""]),
    ("arguments =", []),
])
def test_arguments(line, argv):
    assert jobs.argv_of(one("executable = /bin/true\n%s\nqueue\n" % line)) == argv


@pytest.mark.parametrize("line, env", [
    ("environment = A=1;B=two words;;C=", {"A": "1", "B": "two words", "C": ""}),
    ("env = \"A='x y' B=2 C='it''s'\"", {"A": "x y", "B": "2", "C": "it's"}),
    ("environment = \"URL=a=b\"", {"URL": "a=b"}),
    # HTCondor's manual example, and Parsl's quoting of a value with a quote in it:
    ("environment = \"one=1 two=\"\"2\"\" three='spacey ''quoted'' value'\"",
     {"one": "1", "two": '"2"', "three": "spacey 'quoted' value"}),
    ("environment = \"PARSL_SITE='it\"\"s awq' JOBNAME='parsl.x.1'\"",
     {"PARSL_SITE": 'it"s awq', "JOBNAME": "parsl.x.1"}),
])
def test_environment(line, env):
    assert jobs.environment_of(one("executable = /bin/true\n%s\nqueue\n" % line)) == env


def test_getenv_copies_the_submitters_environment_and_submitted_values_win():
    job = one("executable = /bin/true\ngetenv = true\nenvironment = SITE=CERN\nqueue\n")
    assert jobs.environment_of(job)["SITE"] == "CERN"
    assert jobs.environment_of(job)["HOME"] == "/home/vobox"


def test_queue_n_and_item_lists_number_processes():
    job_list = build("executable = /bin/true\narguments = $(Process) $(Item)\nqueue 2 in (a, b)\n")
    assert [jobs.argv_of(j) for j in job_list] == [["0", "a"], ["1", "a"], ["2", "b"], ["3", "b"]]


def test_a_multi_line_item_list_and_loop_variables_that_are_submit_commands():
    # law's grouped submission; the same shape as HTCondor's manual (`queue input,arguments from`).
    job_list = build("executable = /bin/true\noutput = out$(law_job_postfix).txt\n"
                     "arguments = ignored\nqueue law_job_postfix, arguments from (\n"
                     "    _1, _1 ''\n  # a comment\n\n    _2, -a, b  c\n)\n"
                     "arguments = after\nqueue\n")
    assert [jobs.argv_of(j) for j in job_list] == [["_1", "''"], ["-a,", "b", "c"], ["after"]]
    assert [j["Out"].rsplit("/", 1)[1] for j in job_list] == ["out_1.txt", "out_2.txt", "out.txt"]
    assert "law_job_postfix" not in job_list[0]


def test_an_item_list_without_its_closing_parenthesis_is_an_error():
    with pytest.raises(SubmitError, match="no closing parenthesis"):
        build("executable = /bin/true\nqueue a from (\n  x\n  y\n")


def test_a_lone_double_quote_inside_a_new_syntax_value_is_an_error():
    with pytest.raises(SubmitError, match="must be doubled"):
        one("executable = /bin/true\nenvironment = \"A='x\"y'\"\nqueue\n")
    assert jobs.argv_of(one("executable = /bin/true\narguments = \"'a \"\"b\"\"' c\"\nqueue\n")) \
        == ['a "b"', "c"]


def test_stream_output_and_error_are_booleans():
    # dask-jobqueue writes `Stream_Output = True`; HTCondor's StreamOut is a boolean.
    job = one("executable = /bin/true\nStream_Output = True\nstream_error = false\n"
              "output = o\nerror = e\nqueue\n")
    assert (job["StreamOut"], job["StreamErr"]) == (True, False)
    # As in HTCondor: a stream flag without its file is dropped.
    assert "StreamOut" not in one("executable = /bin/true\nstream_output = true\nqueue\n")


def test_settings_after_a_queue_apply_to_later_queues():
    job_list = build("executable = /bin/true\narguments = first\nqueue\narguments = second\nqueue 2\n")
    assert [jobs.argv_of(j) for j in job_list] == [["first"], ["second"], ["second"]]


def test_macros_continuations_comments_and_case():
    job = one("# a comment\nEXECUTABLE = /opt/$(name)\nname = agent.sh\n"
              "Arguments = $ENV(SITE) $(undefined_macro) \\\n $(missing:dflt)\nqueue\n")
    assert job["Cmd"] == "/opt/agent.sh"
    assert jobs.argv_of(job) == ["Torino", "dflt"]


def test_unknown_keys_are_macros_and_attributes_are_kept():
    # As in HTCondor: a key that is no submit command sets no attribute, only a macro.
    job = one("executable = /bin/true\nfoo_bar = baz\narguments = $(foo_bar)\n"
              "+Site = \"Torino\"\nMY.Cores = 8\nqueue\n")
    assert "foo_bar" not in job and jobs.argv_of(job) == ["baz"]
    assert (job["Site"], job["Cores"]) == ("Torino", 8)


def test_request_units():
    job = one("executable = /bin/true\nrequest_memory = 2 GB\nrequest_disk = 3M\n"
              "request_cpus = 4\nqueue\n")
    assert (job["RequestMemory"], job["RequestDisk"], job["RequestCpus"]) == (2048, 3072, 4)


def test_relative_paths_follow_initialdir_but_the_executable_the_submit_directory():
    # HTCondor's manual: the executable is found where condor_submit runs, files in initialdir.
    job = one("executable = bin/agent\ninitialdir = /data/run\noutput = ../logs/o\nqueue\n")
    assert (job["Iwd"], job["Out"]) == ("/data/run", "/data/logs/o")
    assert job["Cmd"] == "/home/vobox/bin/agent"


def test_append_and_queue_override():
    job = build("executable = /bin/true\nqueue\n", append=["batch_name = b1"])[0]
    assert job["JobBatchName"] == "b1"
    assert len(build("executable = /bin/true\nqueue\n", queue_override="3")) == 3


def test_files_to_check():
    job = one("executable = /x/agent\noutput = /logs/o\nlog = /logs/l\nqueue\n")
    assert ("executable", "/x/agent") in submit.files_to_check(job)
    assert ("output", "/logs/o") in submit.files_to_check(job)


@pytest.mark.parametrize("text, message", [
    ("executable = /bin/true\n", "queue"),
    ("output = /tmp/o\nqueue\n", "executable"),
    ("executable = /bin/true\nqueue 100000\n", "at most 10000"),
    ("executable = /bin/true\nqueue 5000\nqueue 5001\n", "at most 10000"),
    ("executable = /bin/true\nthis line is junk\nqueue\n", "line 2"),
    ("executable = /bin/true\narguments = \"a b\nqueue\n", "double quote"),
    ("executable = /bin/true\narguments = \"'a b\"\nqueue\n", "single quote"),
    ("executable = /bin/true\narguments = a\"b\nqueue\n", "double quote"),
    ("executable = /bin/true\nenvironment = NOVALUE\nqueue\n", "NAME=value"),
    ("executable = /bin/true\na = $(b)\nb = $(a)\narguments = $(a)\nqueue\n", "nested"),
    ("executable = /bin/true\nuniverse = nonsense\nqueue\n", "universe"),
    ("executable = /bin/true\n+Bad = (1 +\nqueue\n", "Bad"),
    ("executable = /bin/true\ntransfer_executable = maybe\nqueue\n", "true or false"),
    ("executable = /bin/true\nqueue x from /etc/list\n", "no submit directory"),
    ("executable = /bin/true\nif defined X\nqueue\n", "no 'endif'"),
    ("executable = /bin/true\nelse\nqueue\n", "without 'if'"),
    ("executable = /bin/true\nif $(A) == 1\nendif\nqueue\n", "not a valid if condition"),
    ("executable = /bin/true\ninclude command : cat x\nqueue\n", "not supported"),
    ("executable = /bin/true\nnotification = sometimes\nqueue\n", "notification"),
    ("executable = /bin/true\narguments = $INT(Cluster * x)\nqueue\n", "number"),
    ("executable = /bin/true\narguments = $CHOICE(5, a, b)\nqueue\n", "outside"),
    ("executable = /bin/\0true\nqueue\n", "NUL"),
    ("executable = /bin/true\nqueue 0\n", "no job"),
])
def test_errors(text, message):
    with pytest.raises(SubmitError, match=message):
        build(text)


def test_huge_queue_is_refused_without_building_ads():
    desc = "executable = /bin/true\nqueue 9999\n" * 2
    with pytest.raises(SubmitError):
        submit.parse_description(desc)


# ---------------------------------------------------------------- properties

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_descriptions_raise_only_submit_errors(text):
    try:
        build(text)
    except SubmitError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters="\0"), max_size=12), max_size=6))
def test_arguments_round_trip(argv):
    job = {"Arguments": jobs.join_arguments(argv)}
    assert jobs.argv_of(job) == argv


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                       st.text(st.characters(blacklist_characters="\0"), max_size=12), max_size=5))
def test_environment_round_trips(env):
    job = {"Environment": jobs.join_environment(env)}
    assert jobs.environment_of(job) == env


def test_include_and_queue_from_a_file_and_matching_read_the_submit_directory(tmp_path):
    (tmp_path / "common.inc").write_text("arguments = $(Item)\n")
    (tmp_path / "items.txt").write_text("a 1\nb 2\n")
    (tmp_path / "x.dat").write_text("")
    (tmp_path / "d.dat").mkdir()
    base = "executable = /bin/true\ninclude : common.inc\n"
    desc = submit.parse_description(base + "queue name, n from items.txt\n", cwd=str(tmp_path))
    assert [q.queue.items for q in desc.statements if q.queue] == [["a 1", "b 2"]]
    found = submit.parse_description(base + "queue matching *.dat\n", cwd=str(tmp_path))
    assert [q.queue.items for q in found.statements if q.queue] == [["d.dat/", "x.dat"]]
    files = submit.parse_description(base + "queue matching files *.dat\n", cwd=str(tmp_path))
    assert [q.queue.items for q in files.statements if q.queue] == [["x.dat"]]


def test_conditionals_see_the_macros_set_above_them():
    text = ("BIG = true\nexecutable = /bin/true\nif defined BIG\n  if $(BIG)\n    arguments = big\n"
            "  endif\nelif version >= 9.0\n  arguments = new\nelse\n  arguments = old\nendif\nqueue\n")
    assert jobs.argv_of(one(text)) == ["big"]
    assert jobs.argv_of(one(text.replace("BIG = true\n", ""))) == ["new"]


def test_row_step_item_index_and_number_macros():
    job_list = build("executable = /bin/true\nN = 4\narguments = $(Item) $(Row) $(ItemIndex) $(Step) "
                     "$INT(N,%03d) $REAL(N) $CHOICE(Step, x, y)\nqueue 2 in (p, q)\n")
    assert [jobs.argv_of(j) for j in job_list][1:3] == [["p", "0", "0", "1", "004", "4", "y"],
                                                        ["q", "1", "1", "0", "004", "4", "x"]]


def test_continuation_lines_join_without_a_space_and_commands_store_htcondor_attributes():
    job = one("executable = /bin/true\narguments = a\\\n  b\nnotification = Error\n"
              "transfer_output_files = x , y\ntransfer_output_remaps = \"x = z\"\n"
              "on_exit_hold_reason = \"why\"\nmax_retries = 3\nqueue\n")
    assert jobs.argv_of(job) == ["ab"]
    assert (job["JobNotification"], job["TransferOutput"], job["TransferOutputRemaps"],
            job["OnExitHoldReason"], job["JobMaxRetries"]) == (3, "x,y", "x = z", "why", 3)
    assert job["OnExitRemove"] == classad.Expr("NumJobCompletions > JobMaxRetries || ExitCode is 0")
