"""Import every product module and run the pure core once: run with a Python 3.9
interpreter (EL9's system Python) by scripts/test.sh when one is installed."""

import sys

import importlib
import pkgutil

import awq

# Every product module imports on this interpreter (Work Queue's own module is only
# imported when a master starts, so this needs no bindings for 3.9).
for module in pkgutil.walk_packages(awq.__path__, "awq."):
    importlib.import_module(module.name)
from awq import classad, jobs, query, submit, tasks

desc = submit.parse_description('executable = /bin/sh\narguments = "-c \'echo hi\'"\n'
                                "environment = A=1;B=$(Cluster)\nrequest_memory = floor(MY.M / 2)\n"
                                "MY.M = 100\nqueue 2\n")
job_list = submit.build_jobs(desc, cluster_id=3, cwd="/tmp", environ={}, owner="u", uid=0, now=1)
spec = tasks.task_spec(job_list[1])
assert spec.memory_mb == 50 and "./sh -c 'echo hi'" in spec.command, spec
assert jobs.environment_of(job_list[1]) == {"A": "1", "B": "3"}
assert classad.evaluate("JobStatus == 1 && ProcId > 0", job_list[1]) is True
text = query.render_q(query.parse_q_args(["-af:t", "ClusterId", "ProcId"]), job_list, now=2,
                      schedd_name="x")
assert text == "3\t0\n3\t1\n", text
print("Python %s: product imports and core smoke ok" % sys.version.split()[0])
