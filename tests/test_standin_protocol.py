"""The worker stand-in (benchmarks/standin_worker.py) reads and answers the Work Queue
protocol as the installed work_queue_worker does: its parsers, and one whole session
against a manager played by the test over loopback (no program started).

The manager's lines are those a CCTools 8 manager sent a real worker (its debug log, `rx
from manager`); the answers are those the real worker gave (`tx to manager`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib

import pytest

from benchmarks import standin_worker as standin
from benchmarks.standin_worker import (HeldTask, ProtocolError, auth_response, greeting_lines,
                                       parse_cue, parse_greeting, result_line, sleep_seconds)

GREETING = "workqueue 9 host.example Linux x86_64 8.0.0"
PASSWORD = b"secret\n"
# A session with the loopback manager: the authentication, the greeting and one task.
SESSION_WITHIN = 10.0


def test_auth_response_is_the_sha1_of_the_whole_password_file_and_the_key() -> None:
    key = "a" * 64
    assert auth_response(PASSWORD, key) == hashlib.sha1(b"secret\n " + key.encode()).hexdigest()
    assert len(auth_response(PASSWORD, key)) == 40


def test_greeting_is_parsed_and_announces_resources_then_ends_the_update() -> None:
    assert parse_greeting(GREETING) == (9, "host.example", "Linux", "x86_64", "8.0.0")
    with pytest.raises(ProtocolError):
        parse_greeting("workqueue nine host Linux x86_64 8.0.0")
    lines = greeting_lines(GREETING, "worker-abc", 250, 12000, 40000)
    assert lines[:3] == [GREETING, "info worker-id worker-abc", "alive"]
    assert "resource cores 250 250 250" in lines
    assert "resource memory 12000 12000 12000" in lines
    # The manager takes the resource update as complete at the tag.
    assert lines.index("resource tag 0") > lines.index("resource cores 250 250 250")
    assert lines[-1] == "info worker-end-time 0"


def test_task_message_with_command_environment_files_and_resources() -> None:
    task = HeldTask(1)
    command = b"chmod +x ./exe.sh; ./exe.sh > job.out 2> job.err"
    assert task.feed_line("cmd %d" % len(command))
    assert task.payload == len(command)
    task.feed_payload(command)
    for line in ["category default", "cores 1.000", "gpus 0", "memory 100", "disk 50"]:
        assert task.feed_line(line)
    assert task.feed_line("env 11")
    assert task.payload == 12  # the variable and its newline
    task.feed_payload(b"FOO=bar baz\n")
    for line in ["infile file-0-7875-exe.sh exe.sh 1", "infile file-2-8fe4-pw proxy 0",
                 "outfile file-3-77b7-job.out.local job.out 0"]:
        assert task.feed_line(line)
    assert not task.feed_line("end")
    assert task.command == command.decode()
    assert task.environment == {"FOO": "bar baz"}
    assert task.inputs == [("file-0-7875-exe.sh", "exe.sh", 1), ("file-2-8fe4-pw", "proxy", 0)]
    assert task.outputs == [("file-3-77b7-job.out.local", "job.out", 0)]
    assert task.cores() == 1.0 and task.resources["memory"] == "100"


def test_an_unknown_line_inside_a_task_is_refused_as_the_worker_does() -> None:
    with pytest.raises(ProtocolError):
        HeldTask(3).feed_line("frobnicate 1")


def test_sleep_is_found_in_the_command_or_a_small_input() -> None:
    assert sleep_seconds("sleep 30", []) == 30.0
    assert sleep_seconds("./pilot.sh > out", [b"#!/bin/sh\n: > x\nexec sleep 86399\n"]) == 86399
    assert sleep_seconds("cd x; sleep 1.5 && true", []) == 1.5
    assert sleep_seconds("./pilot.sh", [b"#!/bin/sh\necho nosleep\n"]) is None
    assert sleep_seconds("usleep 3", []) is None


def test_cues() -> None:
    assert parse_cue("finish 3\nfinish 1 7\n\nfinish-all\nfinish-all 2\ndrop 4\n") == [
        ("finish", 3, 0), ("finish", 1, 7), ("finish", -1, 0), ("finish", -1, 2),
        ("drop", 4, 0)]
    for bad in ("finish", "finish x", "drop -1", "explode 3", "finish 1 2 3"):
        with pytest.raises(ValueError):
            parse_cue(bad)


def test_result_line_is_what_the_manager_parses() -> None:
    assert result_line(3, 0, 8689, 12) == "result 0 3 0 8689 12"


def _options(port: int, task_seconds: float) -> argparse.Namespace:
    return argparse.Namespace(host="127.0.0.1", port=port, workers=1, cores=4, memory=1000,
                              disk=1000, task_seconds=task_seconds, output_text="",
                              job_variable="AWQ_BENCH_JOB", verbose=False)


async def _manager_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        seen: list) -> None:
    """What a CCTools 8 manager does with a new worker: link_auth_password, the greeting,
    a cached input and one task, then its result and its output file."""
    async def line() -> str:
        return (await reader.readline()).decode().rstrip("\n")
    my_key = "k" * 64
    writer.write(b"auth password sha1\n" + my_key.encode() + b"\n")
    assert await line() == "auth password sha1"
    peer_key = await line()
    writer.write(auth_response(PASSWORD, peer_key).encode() + b"\n")
    assert await line() == auth_response(PASSWORD, my_key)
    writer.write(b"ok\n")
    assert await line() == "ok"
    while True:
        text = await line()
        seen.append(text)
        if text.startswith("info worker-end-time"):
            break
    script = b"#!/bin/sh\nexec sleep 1\n"
    # As send_task_to_worker: the command's bytes follow `cmd N` with no newline; an
    # environment variable is followed by one (`env N`, then N bytes and a newline).
    command = b"./pilot.sh > _condor_stdout"
    writer.write(b"put file-0-aa-pilot.sh %d 0755\n" % len(script) + script
                 + b"task 7\ncmd %d\n" % len(command) + command
                 + b"cores 1.000\nmemory 100\nenv 17\nAWQ_BENCH_JOB=1.0\n"
                 + b"infile file-0-aa-pilot.sh pilot.sh 1\n"
                 + b"outfile file-1-bb-o _condor_stdout 0\nend\n")
    assert await line() == "info tasks_running 1"
    assert await line() == "available_results"
    writer.write(b"send_results -1\n")
    result = (await line()).split()
    assert result[:4] == ["result", "0", "0", "0"] and result[5] == "7"
    assert await line() == "info tasks_running 0"
    assert await line() == "end"
    writer.write(b"get file-1-bb-o 1\n")
    assert await line() == "file file-1-bb-o 0"
    assert await line() == "end"
    writer.write(b"get file-9-none 1\n")
    assert await line() == "missing file-9-none 2"
    assert await line() == "end"
    writer.write(b"check\n")
    assert await line() == "alive"
    writer.write(b"kill 7\nrelease\n")
    await writer.drain()
    seen.append("done")


def test_a_whole_session_against_a_manager_on_loopback() -> None:
    seen: list = []

    async def scenario() -> dict:
        finished = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await _manager_side(reader, writer, seen)
            finally:
                finished.set()
                writer.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # The duration comes from the pilot script's `exec sleep 1` (no --task-seconds).
        fleet = standin.Fleet(_options(port, None), GREETING, PASSWORD)
        fleet.connections = [standin.Connection(fleet, 0)]
        worker = asyncio.ensure_future(fleet.connections[0].run())
        try:
            await asyncio.wait_for(finished.wait(), SESSION_WITHIN)
        finally:
            fleet.stop.set()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            server.close()
            await server.wait_closed()
        return fleet.status()

    status = asyncio.run(scenario())
    assert seen[0] == GREETING and seen[-1] == "done", seen
    assert status["received"] == 1 and status["finished"] == 1 and status["duplicates"] == 0
    assert status["held"] == 0
