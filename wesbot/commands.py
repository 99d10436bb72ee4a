"""Parse the text of ``/wes ...`` into a :class:`Command`. Pure: no I/O.

The same parser reads what a person types, what ``wesbot ask`` gets on its command line, and the value
of every button wesbot renders (buttons carry command text), so a button value is validated exactly
like typed input.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .format import DURATION_UNITS, duration_text
from .outcome import FAILED_STATES
from .schedule import DAYS, Schedule, parse_schedule
from .servers import SERVER_NAME
from .wes.models import TERMINAL, RunState

MAX_ID = 256


class UsageError(Exception):
    """The command text is wrong. ``usage`` is the usage line to answer with."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


@dataclass(frozen=True, kw_only=True)
class Subcommand:
    """One subcommand, as its help shows it. ``brief`` is its few words in ``/wes help``, ``summary`` its full
    description in ``/wes help NAME``; ``example`` a realistic use; ``options`` the keys of :data:`OPTIONS`
    that apply to it."""

    name: str
    usage: str
    summary: str
    brief: str
    example: str
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


# The options a subcommand may take, by the key its help shows. A lookup may be shared in the channel;
# --server applies to what goes to one WES server (not to what answers for every server or for none).
SHARE = "--share"
SERVER = "--server NAME"
DEADLINE = "--deadline DURATION"
_LOOKUP = (SHARE, SERVER)
OPTIONS: dict[str, str] = {
    SHARE: "post the answer in the channel, not only to you",
    SERVER: "use that WES server, not this channel's default (also `-s NAME`)",
    DEADLINE: "also tell you once if the run has not ended that long after it started (`90s`, `45m`, `6h`, `2d`, "
    "`1h30m`)",
}


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        name="help", usage="/wes help [SUBCOMMAND]", summary="Show this help, or the usage of one subcommand.",
        brief="this help, or one command in detail", example="/wes help status",
    ),
    Subcommand(
        name="runs",
        usage="/wes runs [STATE|failed|finished|active]",
        summary="List the most recent runs, one page at a time. With a state, only runs in that state "
        "(`failed` = EXECUTOR_ERROR, SYSTEM_ERROR or PREEMPTED; GET /runs gives no exit codes, so a COMPLETE run "
        "with a non-zero exit code shows under `finished`).",
        brief="recent runs, or those in a state", example="/wes runs failed", options=_LOOKUP,
    ),
    Subcommand(
        name="status", usage="/wes status RUN_ID", summary="The run's state, fast.",
        brief="the run's state", example="/wes status 3f2a…", options=_LOOKUP,
    ),
    Subcommand(
        name="details",
        usage="/wes details RUN_ID",
        summary="The run in full: request, parameters, run log, outputs and the number of tasks.",
        brief="the run in full", example="/wes details 3f2a…", aliases=("show",), options=_LOOKUP,
    ),
    Subcommand(
        name="tasks",
        usage="/wes tasks RUN_ID [failed]",
        summary="The run's tasks, one page at a time; `failed` shows only tasks with a non-zero exit code.",
        brief="the run's tasks, or the failed ones", example="/wes tasks 3f2a… failed", options=_LOOKUP,
    ),
    Subcommand(
        name="task", usage="/wes task RUN_ID TASK_ID", summary="One task in full.",
        brief="one task in full", example="/wes task 3f2a… align", options=_LOOKUP,
    ),
    Subcommand(
        name="logs",
        usage="/wes logs RUN_ID [TASK_ID] [stdout|stderr]",
        summary="The last lines of a log (stderr by default): of the task, else of the first failed task, else of "
        "the run.",
        brief="the end of a log", example="/wes logs 3f2a… align", options=_LOOKUP,
    ),
    Subcommand(
        name="command",
        usage="/wes command RUN_ID [TASK_ID]",
        summary="The whole command line of the run, or of one of its tasks: details and task shorten a long one "
        "in its middle.",
        brief="a whole command line", example="/wes command 3f2a… align", options=_LOOKUP,
    ),
    Subcommand(
        name="timeline",
        usage="/wes timeline RUN_ID",
        summary="A picture of the run's tasks on a time axis: one bar per task (per task name when there are many), "
        "coloured by outcome, with the stretches where one task ran alone shaded (the likely bottleneck).",
        brief="where the run spent its time", example="/wes timeline 3f2a…", options=_LOOKUP,
    ),
    Subcommand(
        name="subscribe",
        usage="/wes subscribe RUN_ID [--deadline DURATION]",
        summary="Watch the run, and post in this channel when it ends (mentioning you). With `--deadline 6h`, "
        "you also hear once, in the card's thread, if it has not ended 6 hours after it started.",
        brief="tell the channel when it ends", example="/wes subscribe 3f2a… --deadline 6h",
        options=(DEADLINE, SERVER),
    ),
    Subcommand(
        name="unsubscribe", usage="/wes unsubscribe RUN_ID", summary="Stop watching the run in this channel.",
        brief="stop following the run", example="/wes unsubscribe 3f2a…", options=(SERVER,),
    ),
    Subcommand(
        name="subscriptions", usage="/wes subscriptions",
        summary="The runs and channel-wide watches of this channel.",
        brief="what this channel follows", example="/wes subscriptions",
    ),
    Subcommand(
        name="watch",
        usage="/wes watch [tag KEY=VALUE|mine] failed|finished | /wes watch [tag KEY=VALUE] long|queued DURATION",
        summary="Post in this channel whenever any run on the server fails (or ends), or only runs with that tag. "
        "`long 6h`: once about every run still active 6 hours after it started (its start time, or when wesbot "
        "first saw it); `queued 30m`: once about every run QUEUED or INITIALIZING that long. `watch mine` (or "
        "`watch failed mine`) in your direct messages with wesbot: every run you started that ends (or fails).",
        brief="every run that fails, ends, or runs late", example="/wes watch long 6h tag project=rnaseq",
        options=(SERVER,),
    ),
    Subcommand(
        name="unwatch",
        usage="/wes unwatch [tag KEY=VALUE] failed|finished|long|queued",
        summary="Remove a channel-wide watch (the same kind and tag as the watch; a duration is not needed).",
        brief="remove a watch", example="/wes unwatch failed", options=(SERVER,),
    ),
    Subcommand(
        name="report",
        usage="/wes report [24h|7d] | /wes report daily HH:MM | /wes report weekly DAY HH:MM | /wes report off",
        summary="The runs that ended in the last day (or week), by state; the failures and the line that says why; "
        "the longest runs; what is active now. `daily 09:00` or `weekly mon 09:00` posts it in this channel at "
        "that time in your time zone; `off` stops it.",
        brief="what ran, failed and is running", example="/wes report daily 09:00", options=_LOOKUP,
    ),
    Subcommand(
        name="cancel", usage="/wes cancel RUN_ID",
        summary="Cancel the run, after you confirm; the channel is told who did it.",
        brief="cancel a run, after you confirm", example="/wes cancel 3f2a…", options=(SERVER,),
    ),
    Subcommand(
        name="audit", usage="/wes audit [RUN_ID]",
        summary="Recent cancel attempts: who, when, which run, and what happened.",
        brief="who cancelled what", example="/wes audit 3f2a…",
    ),
    Subcommand(
        name="servers",
        usage="/wes servers",
        summary="The configured WES servers: host, whether GET /service-info answers (version, engines, run "
        "counts), and which one this channel uses.",
        brief="the WES servers, and if they answer", example="/wes servers",
    ),
    Subcommand(
        name="use",
        usage="/wes use [SERVER]",
        summary="Make SERVER this channel's default WES server (the channel is told); without a name, show the "
        "default.",
        brief="set or show this channel's server", example="/wes use prod",
    ),
)


@dataclass(frozen=True)
class Group:
    """A heading of ``/wes help`` and the subcommands under it, in the order shown."""

    title: str
    names: tuple[str, ...]


GROUPS: tuple[Group, ...] = (
    Group("Look up", ("runs", "status", "details", "tasks", "task", "logs", "command", "timeline")),
    Group("Follow", ("subscribe", "unsubscribe", "subscriptions", "watch", "unwatch", "report")),
    Group("Cancel", ("cancel", "audit")),
    Group("Admin", ("servers", "use", "help")),
)
# Subcommands that work in Slack only: they act on the channel and user that typed them.
SLACK_ONLY = frozenset({"subscribe", "unsubscribe", "subscriptions", "cancel", "audit", "watch", "unwatch", "use"})
OPTIONS_HELP = ("Add `--share` to a lookup to post it in the channel, and `--server NAME` (`-s NAME`) to ask "
                "another WES server. `/wes help COMMAND` tells more about one.")
SERVER_USAGE = "Usage: /wes SUBCOMMAND ... --server NAME (or -s NAME)"

_BY_NAME = {sub.name: sub for sub in SUBCOMMANDS}
_ALIASES = {alias: sub.name for sub in SUBCOMMANDS for alias in sub.aliases}
# The words that name a subcommand, in the order suggestions prefer them.
_WORDS = (*_BY_NAME, *_ALIASES)
# Every subcommand under exactly one heading of /wes help: one left out would never be shown.
_GROUPED = [name for group in GROUPS for name in group.names]
assert sorted(_GROUPED) == sorted(_BY_NAME), sorted(set(_GROUPED) ^ _BY_NAME.keys()) or _GROUPED
assert all(key in OPTIONS for sub in SUBCOMMANDS for key in sub.options)


def usage(name: str) -> str:
    return "Usage: " + _BY_NAME[name].usage


def subcommand(name: str) -> Subcommand:
    """The subcommand ``name`` (or an alias of it) names; KeyError for none."""
    return _BY_NAME[_ALIASES.get(name, name)]


def grouped(names: Iterable[str] | None = None) -> list[tuple[str, list[Subcommand]]]:
    """The headings of the help and their subcommands, keeping only ``names`` when given (a heading left
    empty is left out): the one structure the Slack and the terminal help both render."""
    keep = set(_BY_NAME if names is None else names)
    sections = [(group.title, [_BY_NAME[name] for name in group.names if name in keep]) for group in GROUPS]
    return [(title, subs) for title, subs in sections if subs]


def group_of(name: str) -> str:
    return next(group.title for group in GROUPS if name in group.names)


# On the terminal: `wesbot ask` runs everything but the Slack-only subcommands; the audit trail is its own
# command, `wesbot audit`.
TERMINAL_COMMANDS = {"audit": "wesbot audit"}
TERMINAL_OPTIONS: dict[str, str] = {
    "--server NAME": "use that WES server, not the default one (also -s NAME)",
    "--json": "print the result as JSON, for scripts",
}


def on_terminal(sub: Subcommand) -> Subcommand:
    """``sub`` as the terminal runs it: its usage and example as ``wesbot ask ...`` (or its own command)."""
    prefix = TERMINAL_COMMANDS.get(sub.name, "wesbot ask " + sub.name)

    def rewrite(text: str) -> str:
        return text.replace("/wes " + sub.name, prefix)

    return dataclasses.replace(sub, usage=rewrite(sub.usage), example=rewrite(sub.example))


def runs_on_terminal(name: str) -> bool:
    return name not in SLACK_ONLY or name in TERMINAL_COMMANDS


def terminal_options(sub: Subcommand) -> tuple[str, ...]:
    """The keys of :data:`TERMINAL_OPTIONS` that apply to ``sub`` on the terminal (no --share: no channel)."""
    return ("--server NAME", "--json") if SERVER in sub.options else ("--json",)


def closest(word: str, choices: Sequence[str], *, cutoff: float = 0.6) -> str | None:
    """The choice nearest to ``word``, ignoring case, as the choice is spelt; None when none is near."""
    by_key = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word[:60].lower(), list(by_key), n=1, cutoff=cutoff)
    return by_key[found[0]] if found else None


def _did_you_mean(word: str, choices: Sequence[str], *, cutoff: float = 0.6) -> str:
    close = closest(word, choices, cutoff=cutoff)
    return f": did you mean {close}?" if close else ""


def _one_of(choices: Sequence[str]) -> str:
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


def _not_one_of(word: str, what: str, choices: Sequence[str], usage_line: str, *, listing: str = "",
                extra: str = "") -> UsageError:
    """The refusal of a word outside a closed set: the nearest choice first, then all of them (``listing``,
    else the choices one by one)."""
    hint = _did_you_mean(word, choices)
    say = f"say {listing or _one_of(choices)}"
    message = f"{word[:40]!r} is not {what}" + (f"{hint} {say[0].upper()}{say[1:]}" if hint else f"; {say}")
    return UsageError(message + extra, usage_line)


# Filters of `/wes runs`: a spec state, or a named group of them.
STATE_GROUPS: dict[str, frozenset[str]] = {
    "failed": FAILED_STATES,
    "finished": frozenset(TERMINAL),
    "active": frozenset(
        {RunState.QUEUED, RunState.INITIALIZING, RunState.RUNNING, RunState.PAUSED, RunState.CANCELING}
    ),
}


# States some servers report that the spec does not have (sapporo's; see WES-NOTES "Quirks"): a filter on them
# is accepted like one on a spec state.
SERVER_STATES = ("DELETED", "DELETING")
# Every word `/wes runs` takes, in the order a refusal lists them.
STATE_WORDS: tuple[str, ...] = (*STATE_GROUPS, *RunState.__members__, *SERVER_STATES)
_STATE_LISTING = f"{', '.join(STATE_GROUPS)} or a state: {', '.join(STATE_WORDS[len(STATE_GROUPS):])}"


@dataclass(frozen=True)
class StateFilter:
    label: str
    states: frozenset[str]

    def matches(self, state: object) -> bool:
        return state is not None and str(state).upper() in self.states


def parse_state_filter(word: str) -> StateFilter:
    """A group (failed, finished, active), a spec state or a known server state, in any case; anything else
    is refused with the words there are and the nearest one."""
    key = word.lower()
    if key in STATE_GROUPS:
        return StateFilter(key, STATE_GROUPS[key])
    upper = word.upper()
    if upper in RunState.__members__ or upper in SERVER_STATES:
        return StateFilter(upper, frozenset({upper}))
    raise _not_one_of(word, "a run state", STATE_WORDS, usage("runs"), listing=_STATE_LISTING)


@dataclass(frozen=True, kw_only=True)
class Command:
    """A parsed command. ``page_token``/``skip`` resume a listing where a "Next page" button left it."""

    name: str
    run_id: str | None = None
    task_id: str | None = None
    state_filter: StateFilter | None = None
    only_failed: bool = False
    topic: str | None = None
    stream: str | None = None
    # watch / unwatch: "failed", "finished", "long" or "queued", and an optional (key, value) tag
    watch_kind: str | None = None
    tag: tuple[str, str] | None = None
    # Seconds: how long a run may be active (watch long) or waiting (watch queued) before the channel hears of
    # it; for subscribe --deadline, how long after its start it should have ended.
    after: float | None = None
    # watch mine: the runs whose owner tag names whoever asked
    mine: bool = False
    # report: the window read (seconds), or the schedule to set (None with unschedule: `report off`)
    window: float | None = None
    schedule: Schedule | None = None
    unschedule: bool = False
    page_token: str | None = None
    skip: int = 0
    share: bool = False
    # --server NAME: the WES server to ask (None: the channel's default, or the only one). ``use`` takes its
    # argument here too.
    server: str | None = None

    def text(self, *, page_token: str | None = None, skip: int = 0, share: bool = False,
             server: str | None = None) -> str:
        """This command as text that :func:`parse` reads back (used for button values). ``server`` (else the
        command's own) is written out, so that a button acts on the server its message came from."""
        words = [self.name, *self._arguments()]
        if page_token:
            words.append("--page=" + quote(page_token, safe=""))
        if skip:
            words.append(f"--skip={skip}")
        if share:
            words.append("--share")
        if server or self.server:
            words.append(f"--server={server or self.server}")
        return " ".join(words)

    def _arguments(self) -> list[str]:
        words: list[str] = []
        if self.run_id is not None:
            words.append(self.run_id)
        if self.task_id is not None:
            words.append(self.task_id)
        if self.state_filter is not None:
            words.append(self.state_filter.label)
        if self.only_failed:
            words.append("failed")
        if self.stream:
            words.append(self.stream)
        if self.tag:
            words += ["tag", f"{self.tag[0]}={self.tag[1]}"]
        if self.watch_kind:
            words.append(self.watch_kind)
        if self.after is not None:
            words.append(("--deadline=" if self.name == "subscribe" else "") + duration_text(self.after))
        if self.mine:
            words.append("mine")
        if self.window is not None:
            words.append(duration_text(self.window))
        if self.schedule is not None or self.unschedule:
            words.append(self.schedule.text() if self.schedule is not None else "off")
        if self.topic:
            words.append(self.topic)
        return words


def _check_id(kind: str, value: str, name: str) -> str:
    if len(value) > MAX_ID:
        raise UsageError(f"that {kind} is longer than {MAX_ID} characters", usage(name))
    if not value.isprintable():
        raise UsageError(f"that {kind} contains control characters", usage(name))
    return value


@dataclass(frozen=True)
class _Options:
    """The ``--`` options, which may stand anywhere in the text: ``--share``, and where a listing resumes."""

    share: bool = False
    page_token: str | None = None
    skip: int = 0
    server: str | None = None
    deadline: float | None = None


def _read_options(words: list[str]) -> tuple[_Options, list[str]]:
    """Split ``words`` into the options and the positional words, in order. Options are read before the
    subcommand is known, so a bad option is reported even when the subcommand is wrong too."""
    found: dict[str, object] = {}
    positional: list[str] = []
    rest = iter(words)
    for word in rest:
        if word in ("--server", "-s"):
            found["server"] = _read_server(next(rest, ""))
        elif word.startswith("--server="):
            found["server"] = _read_server(word[len("--server="):])
        elif word == "--share":
            found["share"] = True
        elif word == "--deadline":
            found["deadline"] = parse_duration(next(rest, ""), usage("subscribe"))
        elif word.startswith("--deadline="):
            found["deadline"] = parse_duration(word[len("--deadline="):], usage("subscribe"))
        elif word.startswith("--page="):
            found["page_token"] = unquote(word[len("--page=") :]) or None
        elif word.startswith("--skip="):
            found["skip"] = _read_skip(word[len("--skip=") :])
        elif word.startswith("--") and len(word) > 2:
            raise UsageError(f"unknown option {word[:40]!r}" + _did_you_mean(word, ("--share", "--server",
                                                                                      "--deadline")),
                             "Usage: /wes SUBCOMMAND ... [--share] [--server NAME]")
        else:
            positional.append(word)
    return _Options(**found), positional  # type: ignore[arg-type]


# How long a deadline may be: a few seconds to a quarter of a year.
MIN_DURATION = 10
MAX_DURATION = 90 * 86400
DURATION_FORMS = "`90s`, `45m`, `6h`, `2d` or `1h30m`"
_DURATION = re.compile(r"(?:(\d{1,5})d)?(?:(\d{1,5})h)?(?:(\d{1,5})m)?(?:(\d{1,7})s)?")


def parse_duration(word: str, usage_line: str) -> float:
    """``90s``, ``45m``, ``6h``, ``2d``, ``1h30m`` (units in that order, each at most once) as seconds; anything
    else, or a duration outside MIN_DURATION..MAX_DURATION, is refused with the forms accepted."""
    found = _DURATION.fullmatch(word.lower()) if word else None
    if found is None or not any(found.groups()):
        raise UsageError(f"{word[:40]!r} is not a duration: say {DURATION_FORMS}" if word else
                         f"a duration is missing: say {DURATION_FORMS}", usage_line)
    seconds = sum(int(value) * unit for value, (_, unit) in zip(found.groups(), DURATION_UNITS, strict=True) if value)
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise UsageError(f"{word[:40]!r} is too {'short' if seconds < MIN_DURATION else 'long'}: a duration is "
                         f"from {MIN_DURATION}s to {MAX_DURATION // 86400}d", usage_line)
    return float(seconds)


def _read_server(name: str) -> str:
    """A server name as the configuration allows them; whether it is configured is checked where it is used."""
    if not name:
        raise UsageError("--server needs a server name", SERVER_USAGE)
    if not SERVER_NAME.fullmatch(name.lower()):
        raise UsageError(f"{name[:40]!r} is not a server name (1 to 20 of a-z, 0-9 and -)", SERVER_USAGE)
    return name.lower()


def _read_skip(raw: str) -> int:
    # Bounded: a button value is untrusted, and a huge skip would page through the whole server.
    if not raw.isdigit() or len(raw) > 6:
        raise UsageError("--skip takes a small number", "Usage: /wes runs [STATE]")
    return int(raw)


def _subcommand(word: str) -> str:
    """The subcommand ``word`` names (an alias resolves to its subcommand)."""
    head = word.lower()
    name = _ALIASES.get(head, head)
    if name not in _BY_NAME:
        raise UsageError(
            f"unknown subcommand {word[:40]!r}" + _did_you_mean(word, _WORDS),
            "Usage: /wes " + "|".join(sub.name for sub in SUBCOMMANDS) + " ... (try /wes help)",
        )
    return name


def _need(name: str, args: list[str], count_min: int, count_max: int) -> None:
    if len(args) < count_min:
        raise UsageError("missing argument", usage(name))
    if len(args) > count_max:
        raise UsageError(f"unexpected {args[count_max][:40]!r}", usage(name))


# One parser per subcommand: (subcommand name, its arguments, the options) -> Command. Each checks
# its own argument count, so that the usage line in an error is always that subcommand's.
_Parser = Callable[[str, list[str], _Options], Command]


def _parse_help(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 0, 1)
    topic = None
    if args:
        topic = _ALIASES.get(args[0].lower(), args[0].lower())
        if topic not in _BY_NAME:
            raise UsageError(f"no subcommand {args[0][:40]!r}" + _did_you_mean(args[0], _WORDS), usage("help"))
    return Command(name="help", topic=topic, share=opts.share)


def _parse_runs(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 0, 1)
    return Command(
        name="runs", state_filter=parse_state_filter(args[0]) if args else None,
        share=opts.share, page_token=opts.page_token, skip=opts.skip,
    )


def _parse_no_args(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 0, 0)
    return Command(name=name, share=opts.share)


def _parse_use(name: str, args: list[str], opts: _Options) -> Command:
    """``use [SERVER]``: the name may come as the argument or as ``--server``, not both."""
    _need(name, args, 0, 1)
    if args and opts.server and _read_server(args[0]) != opts.server:
        raise UsageError("name one server", usage(name))
    return Command(name=name, server=_read_server(args[0]) if args else opts.server)


WATCH_KINDS = ("failed", "finished", "long", "queued")
# The kinds that alert on runs still going, after a duration.
LATE_KINDS = ("long", "queued")
STREAMS = ("stdout", "stderr")
# How near a word must be to a stream to be taken for a misspelt one (one typo in six letters is 0.9).
_TYPO = 0.8


def _parse_watch(name: str, args: list[str], opts: _Options) -> Command:
    """``watch``/``unwatch``: a kind (``failed`` by default; ``long`` and ``queued`` take a duration to watch),
    and ``tag KEY=VALUE`` before or after it."""
    _need(name, args, 1, 4)
    tag, rest = _read_tag(name, args)
    mine = any(word.lower() == "mine" for word in rest)
    rest = [word for word in rest if word.lower() != "mine"]
    if mine and tag is not None:
        raise UsageError("`mine` is a tag filter of its own: use it without `tag KEY=VALUE`", usage(name))
    kind = rest[0].lower() if rest else ("finished" if mine else "failed")
    if kind not in WATCH_KINDS:
        raise _not_one_of(rest[0], "a kind of watch", WATCH_KINDS, usage(name))
    after = None
    if kind in LATE_KINDS and name == "watch":
        after = parse_duration(rest[1] if len(rest) > 1 else "", usage(name))
    taken = 1 + (after is not None or (kind in LATE_KINDS and len(rest) > 1 and _is_duration(rest[1])))
    if len(rest) > taken:
        raise UsageError(f"unexpected {rest[taken][:40]!r}", usage(name))
    return Command(name=name, watch_kind=kind, tag=tag, after=after, mine=mine, share=opts.share)


def _is_duration(word: str) -> bool:
    try:
        parse_duration(word, "")
    except UsageError:
        return False
    return True


def _read_tag(name: str, args: list[str]) -> tuple[tuple[str, str] | None, list[str]]:
    """A ``tag KEY=VALUE`` first or last (cut to what a tag may hold), and the other words."""
    words = [word.lower() for word in args]
    if "tag" not in words:
        return None, list(args)
    at = words.index("tag")
    if at not in (0, len(args) - 2) or "=" not in args[at + 1] or args[at + 1].startswith("="):
        raise UsageError("a tag is KEY=VALUE, before or after the kind of watch", usage(name))
    key, _, value = args[at + 1].partition("=")
    return (key[:100], value[:200]), args[:at] + args[at + 2:]


REPORT_WINDOWS = {"24h": 86400.0, "1d": 86400.0, "7d": 7 * 86400.0, "1w": 7 * 86400.0}


def _parse_report(name: str, args: list[str], opts: _Options) -> Command:
    """``report [24h|7d]``, ``report daily HH:MM``, ``report weekly DAY HH:MM``, ``report off``."""
    _need(name, args, 0, 3)
    if not args:
        return Command(name=name, window=86400.0, share=opts.share)
    word = args[0].lower()
    if len(args) == 1 and word in REPORT_WINDOWS:
        return Command(name=name, window=REPORT_WINDOWS[word], share=opts.share)
    if len(args) == 1 and word == "off":
        return Command(name=name, unschedule=True)
    schedule = parse_schedule(args)
    if schedule is None:
        if word in ("daily", "weekly"):
            raise UsageError(f"say `report daily HH:MM` or `report weekly DAY HH:MM` (DAY: {', '.join(DAYS)}; "
                             "HH:MM in 24 hours, your time zone)", usage(name))
        raise _not_one_of(args[0], "a report window or schedule", ("24h", "7d", "daily", "weekly", "off"),
                          usage(name))
    return Command(name=name, schedule=schedule)


def _parse_audit(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 0, 1)
    return Command(name=name, run_id=_check_id("run id", args[0], name) if args else None, share=opts.share)


def _parse_run_id(name: str, args: list[str], opts: _Options) -> Command:
    """The subcommands that take exactly one run id (subscribe also takes --deadline)."""
    _need(name, args, 1, 1)
    # A cancel confirmation is never shared: its red button stays with whoever asked.
    return Command(name=name, run_id=_check_id("run id", args[0], name), share=opts.share and name != "cancel",
                   after=opts.deadline if name == "subscribe" else None)


def _parse_tasks(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 1, 2)
    if len(args) == 2 and args[1].lower() != "failed":
        raise _not_one_of(args[1], "a task filter", ("failed",), usage(name))
    return Command(
        name="tasks", run_id=_check_id("run id", args[0], name), only_failed=len(args) == 2,
        share=opts.share, page_token=opts.page_token, skip=opts.skip,
    )


def _parse_logs(name: str, args: list[str], opts: _Options) -> Command:
    """``RUN_ID [TASK_ID] [stdout|stderr]``: a stream word is only a stream after the run id."""
    _need(name, args, 1, 3)
    args = list(args)
    stream = None
    if args[-1].lower() in STREAMS and len(args) > 1:
        stream = args.pop().lower()
    if len(args) > 2:
        raise _not_one_of(args[2], "a log stream", STREAMS, usage(name))
    if len(args) == 2 and stream is None and closest(args[1], STREAMS, cutoff=_TYPO) is not None:
        # A word one typo from a stream is taken for a misspelt stream rather than sent as a task id; a task
        # really called that is named with a stream after it.
        raise _not_one_of(args[1], "a log stream", STREAMS, usage(name),
                          extra=f" (for a task called {args[1][:40]}, name the stream too: logs RUN_ID "
                          f"{args[1][:40]} stderr)")
    return Command(
        name="logs", run_id=_check_id("run id", args[0], name),
        task_id=_check_id("task id", args[1], name) if len(args) == 2 else None, stream=stream, share=opts.share,
    )


def _parse_task(name: str, args: list[str], opts: _Options) -> Command:
    _need(name, args, 2, 2)
    return Command(
        name="task",
        run_id=_check_id("run id", args[0], name),
        task_id=_check_id("task id", args[1], name),
        share=opts.share,
    )


def _parse_command(name: str, args: list[str], opts: _Options) -> Command:
    """``command RUN_ID [TASK_ID]``: the run's command line, or a task's."""
    _need(name, args, 1, 2)
    return Command(name=name, run_id=_check_id("run id", args[0], name),
                   task_id=_check_id("task id", args[1], name) if len(args) == 2 else None, share=opts.share)


_PARSERS: dict[str, _Parser] = {
    "help": _parse_help,
    "runs": _parse_runs,
    "status": _parse_run_id,
    "details": _parse_run_id,
    "tasks": _parse_tasks,
    "task": _parse_task,
    "logs": _parse_logs,
    "command": _parse_command,
    "timeline": _parse_run_id,
    "subscribe": _parse_run_id,
    "unsubscribe": _parse_run_id,
    "subscriptions": _parse_no_args,
    "watch": _parse_watch,
    "unwatch": _parse_watch,
    "report": _parse_report,
    "cancel": _parse_run_id,
    "audit": _parse_audit,
    "servers": _parse_no_args,
    "use": _parse_use,
}
# A subcommand without a parser would only fail when someone typed it: fail at import instead.
assert _PARSERS.keys() == _BY_NAME.keys(), sorted(_PARSERS.keys() ^ _BY_NAME.keys())


def parse(text: str) -> Command:
    """Parse ``/wes`` text. Raises :class:`UsageError` with the usage line for anything wrong."""
    opts, positional = _read_options(text.split())
    if not positional:
        return Command(name="help", share=opts.share)
    name = _subcommand(positional[0])
    if opts.deadline is not None and name != "subscribe":
        raise UsageError("--deadline goes with subscribe", usage("subscribe"))
    command = _PARSERS[name](name, positional[1:], opts)
    return dataclasses.replace(command, server=opts.server) if opts.server and not command.server else command
