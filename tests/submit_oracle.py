"""HTCondor's own submit-language interpreter (PyPI htcondor==24.0.24) as an oracle.

The wheel expands a description offline, without a schedd. It is run in a child
process: on a description it refuses, HTCondor's library can end its process
(a fatal EXCEPT), and that must not end the test run. Both sides' job ads are
turned into comparable text here, attribute by attribute.
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

import classad2

from awq import classad, jobs, submit

# One offline expansion of a description of at most a few hundred jobs; it reads no
# network and starts no daemon, so a minute means it hangs.
ORACLE_TIMEOUT = 60

_ORACLE_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import htcondor, classad
sub = htcondor.Submit(sys.stdin.read())
out = []
for ad in sub.jobs(clusterid=int(sys.argv[1])):
    out.append({key: str(ad.lookup(key)) for key in ad.keys()})
json.dump(out, sys.stdout)
"""

# Attributes HTCondor's submit or schedd sets on every job that this project does not
# produce: bookkeeping the schedd owns (counters, times, versions), matchmaking defaults
# (Requirements is generated from the machine's platform), and its defaults for
# commands the description did not give. Listed with their default value: the same
# attribute with any other value (a description set it) is compared.
HTCONDOR_ONLY = {
    "CommittedSlotTime": "0", "CommittedSuspensionTime": "0", "CommittedTime": "0",
    "CondorPlatform": None, "CondorVersion": None, "CumulativeRemoteSysCpu": "0.0",
    "CumulativeRemoteUserCpu": "0.0", "CumulativeSlotTime": "0", "CumulativeSuspensionTime": "0",
    "CurrentHosts": "0", "DiskUsage": None, "ExecutableSize": None, "ExitBySignal": "false",
    "ExitStatus": "0", "FileSystemDomain": None, "ImageSize": None, "JobSubmitMethod": None,
    "LastSuspensionTime": "0", "MaxHosts": "1", "MinHosts": "1", "NumCkpts": "0",
    "NumJobCompletions": "0", "NumRestarts": "0", "NumSystemHolds": "0", "RemoteSysCpu": "0.0",
    "RemoteUserCpu": "0.0", "RemoteWallClockTime": "0.0", "TargetType": "\"Machine\"",
    "TotalSuspensions": "0", "TransferInputSizeMB": None, "Requirements": None, "Rank": "0.0",
    "In": "\"/dev/null\"", "Out": "\"/dev/null\"", "Err": "\"/dev/null\"", "TransferIn": "false",
    "TransferErr": "false", "TransferOut": "false", "StreamOut": "false", "StreamErr": "false",
    "ShouldTransferFiles": "\"IF_NEEDED\"", "WhenToTransferOutput": "\"ON_EXIT\"",
    "JobLeaseDuration": "2400", "LeaveJobInQueue": "false", "RequestDisk": "DiskUsage",
    "RequestMemory": None, "JobNotification": "0", "Environment": "\"\"",
    "OnExitHold": "false", "OnExitRemove": "true", "PeriodicHold": "false",
    "PeriodicRelease": "false", "PeriodicRemove": "false", "NiceUser": "false",
    "CoreSize": None, "WantRemoteIO": None, "BufferSize": None, "BufferBlockSize": None,
    "WantCheckpoint": None, "ProcId": None, "ClusterId": None, "Owner": None, "QDate": None,
    "EnteredCurrentStatus": None, "JobPrio": "0", "TransferExecutable": "true",
    "HoldReason": None, "HoldReasonCode": None, "HoldReasonSubCode": None,
    "JobStatus": None, "User": None, "EncryptExecuteDirectory": "false",
    "NumJobStarts": "0", "RequestCpus": "1", "Cmd": None, "Iwd": None,
    "Args": None, "Arguments": None, "Env": None, "MyType": None, "Requirements ": None,
    "OnExitHoldReason": None, "OnExitHoldSubCode": None, "SuccessCheckpointExitCode": None,
    "ExitCode": None, "StreamIn": "false", "KillSig": None,
}
# Set by this project at HTCondor's own default, which HTCondor leaves implicit.
OURS_AT_DEFAULT = {"TransferExecutable": "true"}
# Produced by this project only, never by HTCondor's submit.
OURS_ONLY = {"HoldReason"}
# Compared as paths: relative ones resolved against the job's Iwd on both sides.
PATHS = {"Cmd", "In", "Out", "Err", "UserLog", "X509UserProxy", "ScitokensFile"}


class OracleRefused(Exception):
    """HTCondor's library would not expand the description."""


def oracle_ads(text: str, cwd: str, environ: Mapping[str, str],
               cluster: int = 1) -> List[Dict[str, str]]:
    """HTCondor's job ads for `text` as submitted from `cwd`: attribute -> unparsed value."""
    done = subprocess.run([sys.executable, "-c", _ORACLE_SCRIPT, str(cluster)], input=text,
                          cwd=cwd, env=dict(environ), capture_output=True, text=True,
                          timeout=ORACLE_TIMEOUT)
    if "ModuleNotFoundError" in done.stderr:
        raise RuntimeError("the oracle is missing: install htcondor==24.0.24 (requirements-test.txt;"
                           " its v1 bindings) in %s's environment" % sys.executable)
    if done.returncode != 0:
        raise OracleRefused((done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1])
    return json.loads(done.stdout)


def our_ads(text: str, cwd: str, environ: Mapping[str, str],
            cluster: int = 1) -> List[Dict[str, Any]]:
    desc = submit.parse_description(text, cwd=cwd)
    return submit.build_jobs(desc, cluster_id=cluster, cwd=cwd, environ=environ,
                             owner=jobs.current_owner(), uid=os.getuid(), now=0)


def _canonical(text: str) -> str:
    return str(classad2.ExprTree(text))


def _string(text: str) -> Optional[str]:
    value = classad2.ExprTree(text).eval()
    return value if isinstance(value, str) else None


def _their_argv(ad: Mapping[str, str]) -> List[str]:
    if "Arguments" in ad:
        return jobs.split_words(_string(ad["Arguments"]) or "", "arguments")
    return (_string(ad.get("Args", '""')) or "").split()


def _their_environment(ad: Mapping[str, str]) -> Dict[str, str]:
    if _string(ad.get("Environment", '""')):
        pairs = jobs.split_words(_string(ad["Environment"]) or "", "environment")
    else:
        pairs = [p for p in (_string(ad.get("Env", '""')) or "").split(";") if p]
    return dict(pair.partition("=")[::2] for pair in pairs)


def differences(ours: Mapping[str, Any], theirs: Mapping[str, str]) -> List[Tuple[str, Any, Any]]:
    """(attribute, ours, theirs) for every attribute on which the two job ads disagree."""
    diffs: List[Tuple[str, Any, Any]] = []
    our_keys = {k.lower(): k for k in ours}
    their_keys = {k.lower(): k for k in theirs}
    our_iwd = ours.get("Iwd", "")
    their_iwd = _string(theirs.get("Iwd", '""')) or ""
    if posixpath.normpath(our_iwd) != posixpath.normpath(their_iwd):  # we drop a trailing /
        diffs.append(("Iwd", our_iwd, their_iwd))
    if jobs.argv_of(ours) != _their_argv(theirs):
        diffs.append(("Arguments", jobs.argv_of(ours), _their_argv(theirs)))
    if jobs.environment_of(ours) != _their_environment(theirs):
        diffs.append(("Environment", jobs.environment_of(ours), _their_environment(theirs)))
    skip = {"iwd", "arguments", "args", "environment", "env", "owner", "qdate",
            "enteredcurrentstatus", "holdreason"}
    for lower in sorted(set(our_keys) | set(their_keys)):
        if lower in skip:
            continue
        our_name, their_name = our_keys.get(lower), their_keys.get(lower)
        name = their_name or our_name
        their_text = theirs.get(their_name) if their_name else None
        if our_name is None:
            default = HTCONDOR_ONLY.get(name, "absent") if name in HTCONDOR_ONLY else "absent"
            if default is None or their_text == default:
                continue
            diffs.append((name, None, their_text))
            continue
        our_text = classad.unparse(ours[our_name])
        if their_name is None and OURS_AT_DEFAULT.get(our_name) == our_text:
            continue
        if their_name is None:
            diffs.append((name, our_text, None))
            continue
        if name in PATHS:
            mine, other = _string(our_text), _string(their_text)
            if mine is not None and other is not None:
                if posixpath.join(our_iwd, mine) == posixpath.join(their_iwd, other):
                    continue
        if name in ("TransferInput", "TransferOutput"):
            mine, other = _string(our_text), _string(their_text)
            if mine is not None and other is not None and \
                    [posixpath.join(our_iwd, p) for p in mine.split(",")] == \
                    [posixpath.join(their_iwd, p) for p in other.split(",")]:
                continue
        if name == "Requirements" and _canonical(our_text) in _canonical(their_text):
            continue  # HTCondor appends its matchmaking clauses to the job's own
        if _canonical(our_text) != _canonical(their_text):
            diffs.append((name, our_text, their_text))
    return diffs
