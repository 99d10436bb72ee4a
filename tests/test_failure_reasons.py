"""Messages a team can scan at a glance: a failure says why first (the lines of its stderr that say what went
wrong), shows that stderr once, shortens long command lines in the middle; a success lists its outputs as
files and links; and every run can link to its page in a web UI (the Open button)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.watching import StubWes
from tests.test_blocks import HOSTILE, assert_inert
from wesbot.commands import parse
from wesbot.config import ConfigError, load_settings, parse_run_url, run_link
from wesbot.outcome import FailedTask, RunOutcome
from wesbot.results import DetailsResult, StatusResult, TaskResult
from wesbot.servers import ServerDefaults, load_servers
from wesbot.slack.cards import ACTION_OPEN, human_size, notification, output_lines, shorten_middle
from wesbot.slack.replies import COMMAND_SHOWN, render
from wesbot.watcher.details import Details
from wesbot.wes.logs import REASON_LINES, REASON_WIDTH, LogFetcher, LogTail, reason_lines
from wesbot.wes.models import Log, RunLog, RunRequest, RunState, RunStatus

# -- which lines say why: real-looking stderr of each engine ------------------------------------------------

CWLTOOL_REFERENCE = (  # the reference wes-service's run_log.stderr for tests/data/fail.cwl, colours and all
    "\x1b[1;30mINFO\x1b[0m /venv/bin/cwltool 3.3.20260925135507\n"
    "\x1b[1;30mINFO\x1b[0m [job wes_workflow.cwl] /tmp/ckinrbt9$ sh \\\n    -c \\\n    'echo oops >&2; exit 3'\n"
    "oops\n"
    "\x1b[1;30mWARNING\x1b[0m \x1b[33m[job wes_workflow.cwl] exited with status: 3\x1b[0m\n"
    "\x1b[1;30mWARNING\x1b[0m \x1b[33m[job wes_workflow.cwl] completed permanentFail\x1b[0m\n"
    "\x1b[1;30mWARNING\x1b[0m \x1b[33mFinal process status is permanentFail\x1b[0m\n"
)
CWLTOOL_JOB_ERROR = """INFO [workflow ] start
INFO [step fail] start
ERROR [job fail.cwl] Job error:
("Error collecting output for parameter 'out': Did not find output file with glob pattern: ['out.txt'].", {})
WARNING [job fail.cwl] completed permanentFail
WARNING [step fail] completed permanentFail
INFO [workflow ] completed permanentFail
WARNING Final process status is permanentFail
"""
CROMWELL = """[2026-01-01 12:00:00,00] [info] WorkflowExecutionActor-1234 [UUID(1234)]: Starting wf.hello
[2026-01-01 12:00:05,00] [info] BackgroundConfigAsyncJobExecutionActor [UUID(1234)wf.hello:NA:1]: Status change \
from Running to Done
[2026-01-01 12:00:06,00] [error] WorkflowManagerActor Workflow 1234 failed (during ExecutingWorkflowState): Job \
wf.hello:NA:1 exited with return code 1 which has not been declared as a valid return code.
"""
NEXTFLOW = """N E X T F L O W  ~  version 23.10.0
executor >  local (1)
[ea/1b2c3d] process > sayHello (1) [100%] 1 of 1, failed: 1 ✘
ERROR ~ Error executing process > 'sayHello (1)'

Caused by:
  Process `sayHello (1)` terminated with an error exit status (127)

Command executed:

  echo 'Hello world!' | cowsay

Command exit status:
  127

Command output:
  (empty)

Command error:
  .command.sh: line 2: cowsay: command not found

Work dir:
  /home/user/work/ea/1b2c3d

 -- Check '.nextflow.log' file for details
"""
SNAKEMAKE = """Building DAG of jobs...
rule bwa_map:
    input: data/genome.fa, data/samples/A.fastq
    output: mapped_reads/A.bam
[E::bwa_idx_load_from_disk] fail to locate the index files
Error in rule bwa_map:
    jobid: 1
    shell:
        bwa mem data/genome.fa data/samples/A.fastq | samtools view -Sb - > mapped_reads/A.bam
        (one of the commands exited with non-zero exit code; note that snakemake uses bash strict mode!)

Removing output files of failed job bwa_map since they might be corrupted:
Shutting down, this might take some time.
Exiting because a job execution failed. Look above for error message
"""
PYTHON = """Loading the sample sheet
Traceback (most recent call last):
  File "/app/run.py", line 40, in <module>
    main()
  File "/app/run.py", line 12, in check
    raise_error_if(bad)
ValueError: sample sheet has no 'sample' column
"""
OOM = """[M::bwa_idx_build] processing 1000000 sequences
/bin/bash: line 1:  4242 Killed                  bwa mem -t 8 ref.fa reads.fq > out.sam
"""
JAVA = """Exception in thread "main" java.lang.OutOfMemoryError: Java heap space
\tat java.util.Arrays.copyOf(Arrays.java:3332)
\tat org.example.ErrorProne.load(ErrorProne.java:10)
\t... 3 more
"""
NONE = """Reading 10 samples
Aligning... done
Wrote out.bam (0 errors)
"""

REASONS = [
    ("cwltool, the reference server", CWLTOOL_REFERENCE,
     ["WARNING [job wes_workflow.cwl] exited with status: 3", "WARNING [job wes_workflow.cwl] completed permanentFail",
      "WARNING Final process status is permanentFail"]),
    ("cwltool, a job error", CWLTOOL_JOB_ERROR,
     ["ERROR [job fail.cwl] Job error:",
      "(\"Error collecting output for parameter 'out': Did not find output file with glob pattern: ['out.txt'].\", {})",
      "WARNING Final process status is permanentFail"]),
    ("Cromwell", CROMWELL,
     ["[2026-01-01 12:00:06,00] [error] WorkflowManagerActor Workflow 1234 failed (during ExecutingWorkflowState): "
      "Job wf.hello:NA:1 exited with return code 1 which has not been declared as a valid return code."[:199] + "…"]),
    ("Nextflow", NEXTFLOW,
     ["ERROR ~ Error executing process > 'sayHello (1)'",
      "Process `sayHello (1)` terminated with an error exit status (127)",
      ".command.sh: line 2: cowsay: command not found"]),
    ("Snakemake", SNAKEMAKE,
     ["[E::bwa_idx_load_from_disk] fail to locate the index files", "Error in rule bwa_map:",
      "(one of the commands exited with non-zero exit code; note that snakemake uses bash strict mode!)"]),
    ("a Python traceback", PYTHON,
     ["Traceback (most recent call last):", "ValueError: sample sheet has no 'sample' column"]),
    ("an OOM kill", OOM, ["/bin/bash: line 1: 4242 Killed bwa mem -t 8 ref.fa reads.fq > out.sam"]),
    ("a Java stack trace", JAVA, ['Exception in thread "main" java.lang.OutOfMemoryError: Java heap space']),
    ("nothing wrong", NONE, []),
    ("an empty log", "", []),
]


@pytest.mark.parametrize(("engine", "stderr", "expected"), REASONS, ids=[r[0] for r in REASONS])
def test_the_lines_that_say_what_went_wrong(engine: str, stderr: str, expected: list[str]) -> None:
    assert reason_lines(stderr) == expected


def test_reasons_are_few_short_distinct_and_clean() -> None:
    noisy = "".join(f"\x1b[31mERROR\x1b[0m [step s{i}] disk quota exceeded on /scratch/{i}\x07\n" for i in range(20))
    noisy += f"error: {'x' * 500}\n" + "Error: permission denied: /data/in.bam\n" * 5
    reasons = reason_lines(noisy)
    assert reasons == ["ERROR [step s0] disk quota exceeded on /scratch/0", "error: " + "x" * 192 + "…",
                       "Error: permission denied: /data/in.bam"]  # one of the 20 look-alikes, then the others
    assert len(reasons) <= REASON_LINES and all(len(r) <= REASON_WIDTH for r in reasons)
    assert not any("\x1b" in r or "\x07" in r for r in reasons)


def test_reasons_are_searched_near_the_end_only() -> None:
    old = "Error: a retry long ago\n" + "working\n" * 500
    assert reason_lines(old) == []
    assert reason_lines(old + "Segmentation fault (core dumped)\n") == ["Segmentation fault (core dumped)"]


def test_a_log_tail_finds_reasons_beyond_the_lines_it_keeps() -> None:
    """The tail shows the last 10 lines, but why it failed is often further up (Nextflow's error block)."""
    with LogFetcher("http://wes.invalid/ga4gh/wes/v1") as fetcher:
        tail = fetcher.tail(NEXTFLOW, what="stderr of run R", lines=3)
    assert "cowsay" not in tail.text
    assert tail.reasons[-1] == ".command.sh: line 2: cowsay: command not found"


# -- the failure notification: why, first ------------------------------------------------------------------


def failed_outcome(**changes: Any) -> RunOutcome:
    values: dict[str, Any] = dict(
        run_id="r1", state="EXECUTOR_ERROR", exit_code=1, start_time="2026-01-01T00:00:00Z",
        end_time="2026-01-01T00:00:02Z", workflow="fail.cwl", stderr=CWLTOOL_REFERENCE,
        failed_tasks=[FailedTask(name="align", exit_code=3)], log_what="stderr of run r1",
        log_text="oops\nWARNING Final process status is permanentFail", log_task_id=None,
        log_reasons=tuple(reason_lines(CWLTOOL_REFERENCE)))
    values.update(changes)
    return RunOutcome(**values)


def first_section(message: dict[str, Any]) -> list[str]:
    return str(message["blocks"][0]["text"]["text"]).split("\n")


def test_a_failure_notification_says_why_right_under_its_state() -> None:
    message = notification(None, failed_outcome(), host="h")
    head, *rest = first_section(message)
    assert "ended *EXECUTOR_ERROR (exit 1)*" in head
    assert rest[:3] == [">`WARNING [job wes_workflow.cwl] exited with status: 3`",
                        ">`WARNING [job wes_workflow.cwl] completed permanentFail`",
                        ">`WARNING Final process status is permanentFail`"]
    assert rest[3] == "*Workflow:* `fail.cwl`"
    assert message["text"] == ("Run r1 ended EXECUTOR_ERROR (exit 1): "
                               "WARNING [job wes_workflow.cwl] exited with status: 3")
    # ... then the tail, as before, and the button for more
    body = json.dumps(message["blocks"])
    assert body.index("exited with status: 3") < body.index("(the end)") and "logs r1" in body


def test_reasons_from_wes_are_escaped_and_cannot_break_out() -> None:
    message = notification(None, failed_outcome(log_reasons=(HOSTILE, "error `x` <!here>")), host="h")
    assert_inert(message)
    assert all(line.count("`") == 2 for line in first_section(message)[1:3])


def test_a_failure_without_reasons_and_a_success_have_no_reason_lines() -> None:
    assert [line for line in first_section(notification(None, failed_outcome(log_reasons=()), host="h"))
            if line.startswith(">")] == []
    success = notification(None, failed_outcome(state="COMPLETE", exit_code=0), host="h")  # reasons of nothing
    assert not any(line.startswith(">") for line in first_section(success)) and ":" not in success["text"][-3:]


def test_the_watcher_reads_the_reasons_with_the_tail_and_links_the_run(tmp_path: Path) -> None:
    log = RunLog(run_id="r/1", state=RunState.EXECUTOR_ERROR, request=RunRequest(workflow_url="fail.cwl"),
                 run_log=Log(exit_code=1, stderr=NEXTFLOW))
    with LogFetcher("http://wes.invalid/ga4gh/wes/v1") as fetcher:
        details = Details(StubWes(), fetcher, run_url="https://ui.example.org/runs/{run_id}")
        outcome, _ = details.outcome("r/1", RunStatus(run_id="r/1", state=RunState.EXECUTOR_ERROR), log)
    assert outcome.log_reasons[0] == "ERROR ~ Error executing process > 'sayHello (1)'"
    assert outcome.link == "https://ui.example.org/runs/r%2F1"
    assert "cowsay: command not found" in json.dumps(notification(None, outcome, host="h")["blocks"][0])


# -- /wes details of a failed run: why first, the stderr once --------------------------------------------------


def failed_run(stderr: str | None = CWLTOOL_REFERENCE, **log: Any) -> RunLog:
    return RunLog(run_id="r1", state=RunState.EXECUTOR_ERROR,
                  request=RunRequest(workflow_url="fail.cwl", workflow_type="CWL"),
                  run_log=Log(exit_code=1, stderr=stderr, **log))


def details_of(run: RunLog, what: str = "stderr of run r1", task_id: str | None = None) -> dict[str, Any]:
    with LogFetcher("http://wes.invalid/ga4gh/wes/v1") as fetcher:
        tail = fetcher.tail(CWLTOOL_REFERENCE, what=what, lines=10)
    return render(DetailsResult(command=parse("details r1"), run=run, log_what=what, log_tail=tail,
                                log_task_id=task_id), host="h")


def test_details_of_a_failure_say_why_under_the_state_and_show_the_stderr_once() -> None:
    message = details_of(failed_run())
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds[:3] == ["header", "section", "section"] and "fields" in message["blocks"][1]
    assert message["blocks"][2]["text"]["text"].startswith(">`WARNING [job wes_workflow.cwl] exited with status: 3`")
    body = json.dumps(message["blocks"])
    assert body.count("cwltool 3.3.20260925135507") == 1  # was twice: the stderr field and the failing log's end
    assert "Stderr of run r1" in body and "*stderr*" not in body
    assert message["text"].endswith(": WARNING [job wes_workflow.cwl] exited with status: 3")


def test_details_still_show_the_runs_stderr_when_the_failing_log_is_a_tasks_own() -> None:
    message = details_of(failed_run("engine log\nall fine here"), what="stderr of task align", task_id="t1")
    body = json.dumps(message["blocks"])
    assert "all fine here" in body and "*stderr*" in body and body.count("cwltool 3.3.20260925135507") == 1


# -- long command lines: shortened in the middle ----------------------------------------------------------------

MIDDLE = [
    ("short", 10, "short", False),
    ("0123456789abcdef", 10, "012345…def", True),
    ("abcdef", 6, "abcdef", False),
    ("abcdefg", 4, "ab…g", True),
]


@pytest.mark.parametrize(("text", "limit", "shown", "cut"), MIDDLE)
def test_shorten_middle_keeps_the_head_and_the_tail(text: str, limit: int, shown: str, cut: bool) -> None:
    assert shorten_middle(text, limit) == (shown, cut)
    assert len(shown) <= limit


def test_long_command_lines_are_shortened_in_the_middle() -> None:
    cmd = ["bwa", "mem", "-t", "8", *(f"--opt{i}=value" for i in range(200)), "ref.fa", "reads.fq", "-o", "out.sam"]
    task = Log(name="align", id="t1", cmd=cmd, exit_code=0)
    for message in (render(TaskResult(command=parse("task r1 t1"), run_id="r1", task=task), host="h"),
                    render(DetailsResult(command=parse("details r1"), run=failed_run(None, cmd=cmd)), host="h")):
        command = next(text for text in (b.get("text", {}).get("text", "") for b in message["blocks"])
                       if "*Command*" in text)
        assert "```bwa mem -t 8 --opt0=value" in command and "out.sam```" in command and "…" in command
        assert "shortened in the middle" in command
        assert len(command.split("```")[1]) <= COMMAND_SHOWN
        # The whole command line is one click away.
        values = [e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert "command r1 t1" in values or "command r1" in values


# -- outputs of a success: files, links, sizes; never raw JSON ------------------------------------------------

OUTPUTS = [
    ("a CWL File at a path", {"out": {"class": "File", "basename": "greeting.txt", "size": 3,
                                      "location": "file:///tmp/outdir/greeting.txt"}},
     ["• *out*: `file:///tmp/outdir/greeting.txt` (3 B)"]),
    ("a CWL File at a URL", {"bam": {"class": "File", "location": "https://data.example.org/x/a.bam?sig=1&b=2",
                                     "size": 5 * 1024 * 1024}},
     ["• *bam*: <https://data.example.org/x/a.bam?sig=1&amp;b=2|a.bam> (5 MiB)"]),
    ("a list of Files and a Directory", {"parts": [{"class": "File", "location": "https://h/p1.txt", "size": 1536},
                                                   {"class": "Directory", "location": "https://h/d"}]},
     ["• *parts*: <https://h/p1.txt|p1.txt> (1.5 KiB)", "• *parts*: <https://h/d|d/>"]),
    ("Toil/sapporo's file list", [{"file_name": "results/out.vcf", "file_url": "http://wes/outputs/out.vcf"}],
     ["• <http://wes/outputs/out.vcf|results/out.vcf>"]),
    ("plain values", {"count": 3, "ok": True, "name": "sample A", "cfg": {"k": [1, 2]}, "empty": None},
     ["• *count*: `3`", "• *ok*: `true`", "• *name*: `sample A`", '• *cfg*: `{"k": [1, 2]}`']),
    ("many", {f"o{i}": i for i in range(25)}, [*(f"• *o{i}*: `{i}`" for i in range(10)), "_…and 15 more._"]),
    ("none", {}, []),
]


@pytest.mark.parametrize(("shape", "outputs", "lines"), OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_outputs_read_well(shape: str, outputs: Any, lines: list[str]) -> None:
    assert output_lines(outputs) == lines


def test_a_success_lists_its_outputs_without_a_code_block() -> None:
    outcome = failed_outcome(state="COMPLETE", exit_code=0, outputs=OUTPUTS[1][1])
    for message in (notification(None, outcome, host="h"),
                    render(DetailsResult(command=parse("details r1"), run=RunLog(
                        run_id="r1", state=RunState.COMPLETE, outputs=OUTPUTS[1][1])), host="h")):
        body = json.dumps(message["blocks"])
        assert "*Outputs:*\\n\\u2022 *bam*: <https://data.example.org/x/a.bam" in body and "```" not in body


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"),
                                            (3 * 1024**3 + 10**8, "3.1 GiB"), (2 * 1024**5, "2048 TiB")])
def test_sizes_are_human_readable(size: int, text: str) -> None:
    assert human_size(size) == text


# -- the run link: WESBOT_RUN_URL and run_url, the Open button ------------------------------------------------

TEMPLATE = "https://ui.example.org/runs/{run_id}"


@pytest.mark.parametrize(("value", "problem"), [
    (TEMPLATE, None),
    ("http://ui:8080/#/run/{run_id}?tab=logs", None),
    ("https://ui.example.org/runs/", "must contain {run_id}"),
    ("ftp://ui.example.org/{run_id}", "must be an http:// or https:// URL"),
    ("/runs/{run_id}", "must be an http:// or https:// URL"),
    ("https://me:secret@ui.example.org/{run_id}", "must not contain credentials"),
])
def test_a_run_link_template_is_an_http_url_with_the_run_id(value: str, problem: str | None) -> None:
    if problem is None:
        assert parse_run_url(value) == value
    else:
        with pytest.raises(ValueError, match=problem.replace("{", "\\{")):
            parse_run_url(value)


def test_the_run_id_is_quoted_into_the_link() -> None:
    assert run_link(TEMPLATE, "a/b?c=d#e f") == "https://ui.example.org/runs/a%2Fb%3Fc%3Dd%23e%20f"
    assert run_link(None, "r1") is None


def test_wesbot_run_url_is_checked_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {"WES_URL": "http://wes", "WESBOT_RUN_URL": "https://ui.example.org/runs"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env, cwd=tmp_path)
    assert [p for p in raised.value.problems if "RUN_URL" in p] == [
        "WESBOT_RUN_URL: must contain {run_id}, where the run id goes, e.g. https://ui.example.org/runs/{run_id}"]
    settings = load_settings({**env, "WESBOT_RUN_URL": TEMPLATE}, cwd=tmp_path)
    assert settings.servers[0].run_url == TEMPLATE


def test_each_server_has_its_own_run_url_else_the_global_one(tmp_path: Path) -> None:
    (tmp_path / "wesbot.toml").write_text('[servers.prod]\nurl = "http://p"\nrun_url = "https://p-ui/{run_id}"\n'
                                          '[servers.dev]\nurl = "http://d"\n'
                                          '[servers.bad]\nurl = "http://b"\nrun_url = "javascript:{run_id}"\n'
                                          '[servers.odd]\nurl = "http://o"\nrun_url = 3\n')
    servers, problems = load_servers({}, cwd=tmp_path, defaults=ServerDefaults(run_url=TEMPLATE))
    assert {s.name: s.run_url for s in servers} == {"prod": "https://p-ui/{run_id}", "dev": TEMPLATE,
                                                    "bad": TEMPLATE, "odd": TEMPLATE}
    assert problems == [
        "wesbot.toml: servers.bad.run_url: must be an http:// or https:// URL (got 'javascript:{run_id}')",
        "wesbot.toml: servers.odd.run_url: must be a string (got a number)"]


def open_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e.get("action_id") == ACTION_OPEN]


def test_the_open_button_links_to_the_runs_page() -> None:
    link = "https://ui.example.org/runs/r1"
    status = StatusResult(command=parse("status r1"), status=RunStatus(run_id="r1", state=RunState.RUNNING))
    details = DetailsResult(command=parse("details r1"), run=failed_run())
    for message in (render(status, host="h", run_url=TEMPLATE), render(details, host="h", run_url=TEMPLATE),
                    notification(None, failed_outcome(link=link), host="h")):
        [button] = open_buttons(message)
        assert button["url"] == link and button["text"]["text"] == "Open" and "value" not in button
    for message in (render(status, host="h"), render(details, host="h"), notification(None, failed_outcome(),
                                                                                         host="h")):
        assert open_buttons(message) == []  # no template, no button


def test_a_log_tail_without_reasons_is_still_a_log_tail() -> None:
    assert LogTail(text="x", truncated=False, source="inline").reasons == ()


def test_the_card_has_the_open_button_too() -> None:
    from wesbot.slack.cards import card
    from wesbot.store.subscriptions import Subscription

    sub = Subscription(id=1, run_id="a/b", channel_id="C1", status="active", created_at=0.0, expires_at=1.0,
                       workflow=None, card_ts=None, card_version=1, card_synced=0, card_failed=None, reason=None,
                       users=("U1",), state="RUNNING")
    [button] = open_buttons(card(sub, host="h", run_url=TEMPLATE))
    assert button["url"] == "https://ui.example.org/runs/a%2Fb"  # the id cannot add a path
    assert open_buttons(card(sub, host="h")) == []
