"""The submit commands HTCondor 24 turns into job attributes, in one table.

A key of a submit description that is no command here (and no `+Name`/`MY.Name`)
is a macro only, as in HTCondor: it can be used as `$(key)` and sets no attribute.
Commands that shape more than one attribute (executable, arguments, environment,
initialdir, universe, hold, the retry commands, ...) are in SPECIAL and are built
by awq.submit itself. Checked against htcondor==24.0.24 by tests/test_submit_bank.py
and tests/test_submit_oracle_property.py.
"""

from __future__ import annotations

from typing import Dict, Tuple

# How a command's value becomes its attribute's value.
STRING = "string"            # the text as written
QUOTED_STRING = "quoted"     # the text, without the double quotes around it if any
PATH = "path"                # a file name, made absolute against the job's Iwd
PATH_LIST = "path_list"      # comma-separated file names, each made absolute
LIST = "list"                # comma-separated names, stored "a,b,c" as HTCondor does
LOWER_LIST = "lower_list"    # the same, lower-cased (concurrency limits are case-blind)
KEYWORD = "keyword"          # an upper-cased keyword (YES, IF_NEEDED, ON_EXIT)
EXPRESSION = "expression"    # a ClassAd expression (literals are stored as values)
INTEGER = "integer"          # an integer
BOOLEAN = "boolean"          # true/false in HTCondor's spellings
MEGABYTES = "megabytes"      # a size, a number of MB by default, units K M G T accepted
KILOBYTES = "kilobytes"      # a size, a number of KB by default
NOTIFICATION = "notification"  # never/always/complete/error as JobNotification 0-3

COMMANDS: Dict[str, Tuple[str, str]] = {
    "output": ("Out", PATH),
    "error": ("Err", PATH),
    "input": ("In", PATH),
    "log": ("UserLog", PATH),
    "x509userproxy": ("X509UserProxy", PATH),
    "scitokens_file": ("ScitokensFile", PATH),
    "batch_name": ("JobBatchName", STRING),
    "description": ("JobDescription", STRING),
    "grid_resource": ("GridResource", STRING),
    "notify_user": ("NotifyUser", STRING),
    "kill_sig": ("KillSig", STRING),
    "hold_kill_sig": ("HoldKillSig", STRING),
    "remove_kill_sig": ("RemoveKillSig", STRING),
    "docker_image": ("DockerImage", STRING),
    "job_ad_information_attrs": ("JobAdInformationAttrs", STRING),
    "submit_event_notes": ("SubmitEventNotes", STRING),
    "accounting_group": ("AcctGroup", STRING),
    "accounting_group_user": ("AcctGroupUser", STRING),
    "transfer_output_remaps": ("TransferOutputRemaps", QUOTED_STRING),
    "transfer_input_files": ("TransferInput", PATH_LIST),
    "transfer_output_files": ("TransferOutput", LIST),
    "concurrency_limits": ("ConcurrencyLimits", LOWER_LIST),
    "should_transfer_files": ("ShouldTransferFiles", KEYWORD),
    "shouldtransferfiles": ("ShouldTransferFiles", KEYWORD),
    "when_to_transfer_output": ("WhenToTransferOutput", KEYWORD),
    "whentotransferoutput": ("WhenToTransferOutput", KEYWORD),
    "notification": ("JobNotification", NOTIFICATION),
    "priority": ("JobPrio", INTEGER),
    "job_lease_duration": ("JobLeaseDuration", INTEGER),
    "max_retries": ("JobMaxRetries", INTEGER),
    "success_exit_code": ("JobSuccessExitCode", INTEGER),
    "coresize": ("CoreSize", INTEGER),
    "transfer_executable": ("TransferExecutable", BOOLEAN),
    "stream_output": ("StreamOut", BOOLEAN),
    "stream_error": ("StreamErr", BOOLEAN),
    "requirements": ("Requirements", EXPRESSION),
    "rank": ("Rank", EXPRESSION),
    "periodic_hold": ("PeriodicHold", EXPRESSION),
    "periodic_hold_reason": ("PeriodicHoldReason", EXPRESSION),
    "periodic_hold_subcode": ("PeriodicHoldSubCode", EXPRESSION),
    "periodic_release": ("PeriodicRelease", EXPRESSION),
    "periodic_remove": ("PeriodicRemove", EXPRESSION),
    "on_exit_remove": ("OnExitRemove", EXPRESSION),
    "on_exit_hold": ("OnExitHold", EXPRESSION),
    "on_exit_hold_reason": ("OnExitHoldReason", EXPRESSION),
    "on_exit_hold_subcode": ("OnExitHoldSubCode", EXPRESSION),
    "leave_in_queue": ("LeaveJobInQueue", EXPRESSION),
    "job_max_vacate_time": ("JobMaxVacateTime", EXPRESSION),
    "max_job_retirement_time": ("MaxJobRetirementTime", EXPRESSION),
    "allowed_execute_duration": ("AllowedExecuteDuration", EXPRESSION),
    "allowed_job_duration": ("AllowedJobDuration", EXPRESSION),
    "deferral_time": ("DeferralTime", EXPRESSION),
    "request_cpus": ("RequestCpus", EXPRESSION),
    "requestcpus": ("RequestCpus", EXPRESSION),
    "request_gpus": ("RequestGPUs", EXPRESSION),
    "request_memory": ("RequestMemory", MEGABYTES),
    "requestmemory": ("RequestMemory", MEGABYTES),
    "request_disk": ("RequestDisk", KILOBYTES),
    "requestdisk": ("RequestDisk", KILOBYTES),
}

# Commands awq.submit builds itself: they set several attributes, or none directly.
SPECIAL = frozenset({
    "executable", "cmd", "arguments", "args", "environment", "env", "getenv", "initialdir",
    "initial_dir", "iwd", "universe", "hold", "use_x509userproxy", "retry_until", "nice_user",
})

# Two spellings of one command: when both are given, HTCondor takes the second one's.
YIELDS_TO = {"requestcpus": "request_cpus", "requestmemory": "request_memory",
             "requestdisk": "request_disk", "should_transfer_files": "shouldtransferfiles",
             "when_to_transfer_output": "whentotransferoutput"}

# Attributes HTCondor adds beside a command's own when the command is given.
COMPANIONS = {
    "DockerImage": {"WantDockerImage": True, "WantContainer": True},
    "DeferralTime": {"DeferralWindow": 0, "DeferralPrepTime": 300, "ScheddInterval": 300},
}
# Attributes HTCondor keeps only when another is there: a stream flag without its
# file means nothing and is dropped (so is a grid resource outside the grid universe).
ONLY_WITH = {"StreamOut": "Out", "StreamErr": "Err"}
# A job lease shorter than this is raised to it (HTCondor's minimum; 0 means no lease).
MIN_JOB_LEASE = 20

# Every key that is a submit command, not a macro.
ALL = frozenset(COMMANDS) | SPECIAL

NOTIFICATIONS = {"never": 0, "always": 1, "complete": 2, "error": 3}
