"""'Maintenance script': an allow-listed script run without a shell, with a timeout.

Only regular, executable files directly inside MAINTENANCE_SCRIPTS_DIR can run; a name
is resolved and checked again at run time, so nothing outside that directory runs
whatever the stored parameters say.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings

from maintenance.procedures import register
from maintenance.procedures.base import (
    Figure,
    Procedure,
    ProcedureForm,
    RunContext,
    StepFailed,
    StepSpec,
    StepStopped,
)
from maintenance.processes import read_output

MAX_OUTPUT = 1_000_000


class ScriptRefused(ValueError):
    pass


def scripts_dir() -> Path:
    return Path(settings.MAINTENANCE_SCRIPTS_DIR).resolve()


def available_scripts() -> list[str]:
    base = scripts_dir()
    if not base.is_dir():
        return []
    names = []
    for entry in sorted(base.iterdir()):
        try:
            names.append(resolve_script(entry.name).name)
        except ScriptRefused:
            continue
    return names


def resolve_script(name: str) -> Path:
    """The allow-listed script called ``name``, or ScriptRefused saying why not."""
    if not name or name != os.path.basename(name) or name in (".", "..") or "\x00" in name:
        raise ScriptRefused("Choose a script by its name from the allow-listed directory.")
    base = scripts_dir()
    path = (base / name).resolve()
    if path.parent != base:
        raise ScriptRefused(f"{name!r} is outside the allow-listed scripts directory.")
    if not path.is_file():
        raise ScriptRefused(f"{name!r} is not a script in the allow-listed directory.")
    if not os.access(path, os.X_OK):
        raise ScriptRefused(f"{name!r} is not executable.")
    return path


def _split_args(raw: str) -> list[str]:
    try:
        args = shlex.split(raw or "")
    except ValueError as exc:
        raise forms.ValidationError(f"Arguments could not be read: {exc}") from None
    if len(args) > 20 or any(len(a) > 200 or "\x00" in a for a in args):
        raise forms.ValidationError("At most 20 arguments of at most 200 characters each.")
    return args


class ScriptForm(ProcedureForm):
    script = forms.CharField(label="Script", max_length=200)
    arguments = forms.CharField(label="Arguments", required=False, max_length=4000)
    timeout_seconds = forms.IntegerField(
        label="Timeout (seconds)",
        min_value=1,
        max_value=settings.PROCEDURE_TIME_LIMIT,
        initial=300,
    )
    rollback_script = forms.CharField(label="Rollback script", required=False, max_length=200)
    expect_output = forms.CharField(
        label="Verification: output must contain", required=False, max_length=200
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = available_scripts()
        self.fields["script"].widget = forms.Select(choices=[(n, n) for n in names])
        self.fields["rollback_script"].widget = forms.Select(
            choices=[("", "— none —"), *[(n, n) for n in names]]
        )

    def clean_script(self) -> str:
        try:
            return resolve_script(self.cleaned_data["script"]).name
        except ScriptRefused as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_rollback_script(self) -> str:
        name = self.cleaned_data.get("rollback_script") or ""
        if not name:
            return ""
        try:
            return resolve_script(name).name
        except ScriptRefused as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_arguments(self) -> list[str]:
        return _split_args(self.cleaned_data.get("arguments", ""))


def run_script(name: str, args: list[str], *, timeout: int, ctx: RunContext) -> dict[str, Any]:
    """Run one allow-listed script, streaming its output into the step; no shell."""
    path = resolve_script(name)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PORTAL_RUN_ID": str(ctx.run_id),
        "PORTAL_CHANGE_ID": str(ctx.change_id),
    }
    started = time.monotonic()
    # Its own session and process group: the whole group can be ended (at a timeout,
    # the window's cutoff, a worker stopping, or by the reaper after a worker died).
    proc = subprocess.Popen(
        [str(path), *args],
        cwd=str(path.parent),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    ctx.started(pid=proc.pid)
    try:
        ended = read_output(
            proc,
            timeout=timeout,
            on_chunk=lambda piece: ctx.log(piece.decode("utf-8", "replace")),
            stop=ctx.stop,
            limit=MAX_OUTPUT,
        )
        timed_out, stopped = ended == "timed out", ended == "stopped"
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
        elif stopped:
            _end_group(proc)
        code = proc.wait(timeout=10)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = round(time.monotonic() - started, 2)
    result = {"script": name, "exit_code": code, "seconds": seconds, "timed_out": timed_out}
    if stopped:
        raise StepStopped(f"{name} was ended: {ctx.stop_message()}", result)
    if timed_out:
        raise StepFailed(f"{name} did not finish within {timeout} s and was stopped.", result)
    if code != 0:
        raise StepFailed(f"{name} exited with status {code}.", result)
    return result


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM the script's group, SIGKILL it if it is still there after 5 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return


@register
class MaintenanceScript(Procedure):
    kind = "maintenance_script"
    label = "Maintenance script"
    description = "Runs an allow-listed script (no shell) with a timeout; optional rollback."
    form_class = ScriptForm
    has_rollback = True
    default_impact = "MEDIUM"

    def to_json(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {
            "script": cleaned["script"],
            "arguments": cleaned["arguments"],
            "timeout_seconds": cleaned["timeout_seconds"],
            "rollback_script": cleaned.get("rollback_script") or "",
            "expect_output": cleaned.get("expect_output") or "",
        }

    def summary(self, params: dict[str, Any]) -> str:
        args = " ".join(shlex.quote(a) for a in params.get("arguments", []))
        text = f"Run {params.get('script')} {args}".strip()
        if params.get("rollback_script"):
            text += f" (rollback: {params['rollback_script']})"
        return text

    def details(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        args = " ".join(shlex.quote(a) for a in params.get("arguments", [])) or "none"
        return [
            ("Script", params.get("script", "")),
            ("Arguments", args),
            ("Timeout", f"{params.get('timeout_seconds')} s"),
            ("Rollback script", params.get("rollback_script") or "none"),
            ("Output must contain", params.get("expect_output") or "(not checked)"),
        ]

    def precheck_names(self, params: dict[str, Any]) -> list[str]:
        return ["The script is allow-listed and executable"]

    def max_minutes(self, params: dict[str, Any]) -> int:
        return max(1, -(-int(params.get("timeout_seconds", 300)) // 60))

    def figures(self, result: dict[str, Any]) -> list[Figure]:
        ran = result.get("script_result") or {}
        if not ran:
            return []
        return [
            Figure(
                "Script",
                ["Script", "Exit status", "Seconds", "Timed out"],
                [
                    [
                        ran.get("script"),
                        ran.get("exit_code"),
                        ran.get("seconds"),
                        ran.get("timed_out"),
                    ]
                ],
            )
        ]

    def prechecks(self, ctx: RunContext) -> list[StepSpec]:
        def allowed(c: RunContext) -> dict[str, Any]:
            try:
                path = resolve_script(c.params["script"])
                if c.params.get("rollback_script"):
                    resolve_script(c.params["rollback_script"])
            except ScriptRefused as exc:
                raise StepFailed(str(exc)) from None
            return {"script": str(path)}

        return [StepSpec("Script is allow-listed and executable", allowed)]

    def steps(self, ctx: RunContext) -> list[StepSpec]:
        def execute(c: RunContext) -> dict[str, Any]:
            result = run_script(
                c.params["script"],
                c.params.get("arguments", []),
                timeout=int(c.params["timeout_seconds"]),
                ctx=c,
            )
            c.state["ran"] = True
            c.state["script_result"] = result
            return result

        return [StepSpec(f"Run {ctx.params['script']}", execute)]

    def verify(self, ctx: RunContext) -> list[StepSpec]:
        expected = ctx.params.get("expect_output")
        if not expected:
            return []

        def contains(c: RunContext) -> dict[str, Any]:
            output = c.state.get("output_of", {}).get("STEP", "")
            if expected not in output:
                raise StepFailed(f"The output does not contain {expected!r}.")
            return {"expected": expected, "found": True}

        return [StepSpec(f"Output contains {expected!r}", contains)]

    def rollback(self, ctx: RunContext) -> list[StepSpec]:
        name = ctx.params.get("rollback_script")
        if not name:
            return []

        def undo(c: RunContext) -> dict[str, Any]:
            return run_script(name, [], timeout=int(c.params["timeout_seconds"]), ctx=c)

        return [StepSpec(f"Roll back with {name}", undo)]
