"""`everydoor import FILE` and `everydoor reevaluate RULESET`: start a long job over the API and
follow it to its end with a progress bar (rows/s, accepted, rejected, ETA).

Both talk HTTP to a running platform: `make run`'s default ports, or the URL in
`EVERYDOOR_REGISTRY_URL` / `EVERYDOOR_ELIGIBILITY_URL`. The caller's token comes from `--token`
or `EVERYDOOR_TOKEN`; in dev mode, without one, a dev token of `--role` is issued locally.
Exit status: 0 the job finished with nothing rejected; 3 it finished with rejected rows (their
reasons are written to `<FILE>.errors.csv`); 1 the job failed or could not start; 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

CHUNK = 256 * 1024
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3


class JobError(Exception):
    """The job could not start or failed; the message says why (a problem's detail if any)."""


@dataclass
class Outcome:
    """How a followed job ended."""

    job: dict[str, Any]
    seconds: float
    errors_file: Path | None = None

    @property
    def exit_status(self) -> int:
        """0 done and clean, 3 done with rejected rows, 1 failed."""
        if self.job.get("status") != "done":
            return EXIT_FAILED
        return EXIT_REJECTED if self.job.get("rejected") else EXIT_OK


def _problem(response: httpx.Response) -> str:
    """A refusal as one line: status, title/detail of a problem+json body, or the text."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:300]}"
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or body
        errors = body.get("errors")
        return f"{response.status_code}: {detail}" + (f" {errors}" if errors else "")
    return f"{response.status_code}: {body}"


def count_rows(path: Path, fmt: str) -> int:
    """Data rows in the file (non-empty lines; a CSV's header line not counted), read in
    chunks so memory stays flat."""
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - (1 if fmt == "csv" else 0))


def format_of(path: Path, fmt: str | None) -> str:
    """ndjson or csv: as given, else by the file's extension."""
    if fmt:
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "ndjson"


def _chunks(path: Path, advance: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            advance(len(chunk))
            yield chunk


def _progress(console: Console, unit: str) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} " + unit),
        TextColumn("{task.fields[rate]:,.0f} " + unit + "/s"),
        TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
        console=console, transient=False)


def follow_import(path: Path, *, url: str, token: str, fmt: str | None = None,
                  interval: float = 0.5, console: Console | None = None,
                  timeout: float | None = None, kind: str = "households") -> Outcome:
    """Upload FILE to `POST /v1/imports?kind=` (households or visits), follow the job, write
    rejected rows' reasons to `<FILE>.errors.csv`. Raises JobError when the upload is refused or
    the job cannot be read."""
    console = console or Console(stderr=True)
    fmt = format_of(path, fmt)
    rows = count_rows(path, fmt)
    size = path.stat().st_size
    headers = {"Authorization": f"Bearer {token}",
               "Content-Type": "text/csv" if fmt == "csv" else "application/x-ndjson"}
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=httpx.Timeout(60.0, read=None)) as client:
        with Progress(TextColumn("[bold]upload"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("upload", total=size)
            r = client.post("/v1/imports", params={"format": fmt, "filename": path.name,
                                                   "kind": kind},
                            headers=headers | {"Content-Length": str(size)},
                            content=_chunks(path, lambda n: bar.advance(task, n)))
        if r.status_code != 202:
            raise JobError(f"upload refused: {_problem(r)}")
        job = r.json()
        location = r.headers.get("location") or f"/v1/imports/{job['import_id']}"
        started = time.monotonic()
        with _progress(console, "rows") as bar:
            task = bar.add_task(f"import {kind} {job['import_id'][:8]}", total=rows or None,
                                rate=0.0, detail="")
            while True:
                done = job["accepted"] + job["skipped"] + job["rejected"]
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=done, rate=done / elapsed, detail=(
                    f"accepted {job['accepted']:,}  skipped {job['skipped']:,}  "
                    f"rejected {job['rejected']:,}"))
                if job["status"] != "running":
                    break
                if timeout is not None and time.monotonic() - t0 > timeout:
                    raise JobError(f"import {job['import_id']} still running after {timeout:.0f} s")
                time.sleep(interval)
                r = client.get(location, headers=headers)
                if r.status_code != 200:
                    raise JobError(f"cannot read the job: {_problem(r)}")
                job = r.json()
            if job["status"] == "done":
                bar.update(task, total=done, completed=done)
        outcome = Outcome(job=job, seconds=time.monotonic() - t0)
        if job["rejected"]:
            target = path.with_name(path.name + ".errors.csv")
            with client.stream("GET", f"/v1/imports/{job['import_id']}/errors",
                               headers=headers | {"Accept": "text/csv"}) as errors:
                if errors.status_code != 200:
                    errors.read()
                    raise JobError(f"cannot read the errors: {_problem(errors)}")
                with target.open("wb") as out:
                    for chunk in errors.iter_bytes():
                        out.write(chunk)
            outcome.errors_file = target
    return outcome


def follow_reevaluation(ruleset_id: str, *, url: str, token: str, interval: float = 0.5,
                        console: Console | None = None,
                        timeout: float | None = None) -> Outcome:
    """`POST /v1/rulesets/{id}/reevaluate`, then follow the job to its end."""
    console = console or Console(stderr=True)
    headers = {"Authorization": f"Bearer {token}"}
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=60.0) as client:
        r = client.post(f"/v1/rulesets/{ruleset_id}/reevaluate", headers=headers)
        if r.status_code != 202:
            raise JobError(f"re-evaluation refused: {_problem(r)}")
        job = r.json()
        location = r.headers.get("location") or f"/v1/reevaluations/{job['job_id']}"
        with _progress(console, "households") as bar:
            task = bar.add_task(f"re-evaluate {ruleset_id}", total=job.get("total") or None,
                                rate=0.0, detail="")
            while True:
                elapsed = max(time.monotonic() - t0, 1e-6)
                bar.update(task, total=job.get("total") or None, completed=job["processed"],
                           rate=job["processed"] / elapsed, detail=f"changed {job['changed']:,}")
                if job["status"] != "running":
                    break
                if timeout is not None and time.monotonic() - t0 > timeout:
                    raise JobError(f"re-evaluation {job['job_id']} still running after "
                                   f"{timeout:.0f} s")
                time.sleep(interval)
                r = client.get(location, headers=headers)
                if r.status_code != 200:
                    raise JobError(f"cannot read the job: {_problem(r)}")
                job = r.json()
    return Outcome(job=job, seconds=time.monotonic() - t0)


def token_for(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """--token, else EVERYDOOR_TOKEN, else (dev mode only) a dev token of --role."""
    token = args.token or environ.get("EVERYDOOR_TOKEN")
    if token:
        return str(token)
    from shared.auth import issue_token
    from shared.settings import PlatformSettings

    if not PlatformSettings().everydoor_dev_mode:
        raise JobError("no token: pass --token or set EVERYDOOR_TOKEN (outside dev mode tokens "
                       "come from the identity provider)")
    from services.cli import dev_subject

    return issue_token(role=args.role, scope=args.scope, sub=dev_subject(args.role))


def cmd_import(args: argparse.Namespace, *, url: str, environ: dict[str, str]) -> int:
    """`everydoor import FILE`."""
    path = Path(args.file)
    if not path.is_file():
        print(f"everydoor import: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        outcome = follow_import(path, url=url, token=token_for(args, environ), fmt=args.format,
                                interval=args.interval, kind=args.kind)
    except (JobError, httpx.HTTPError) as exc:
        print(f"everydoor import: {exc}", file=sys.stderr)
        return EXIT_FAILED
    job = outcome.job
    done = job["accepted"] + job["skipped"] + job["rejected"]
    print(f"import {job['import_id']}: {job['status']} — {job['accepted']:,} accepted, "
          f"{job['skipped']:,} skipped, {job['rejected']:,} rejected of {done:,} rows in "
          f"{outcome.seconds:.1f} s ({done / max(outcome.seconds, 1e-6):,.0f} rows/s)"
          + (f"; errors: {outcome.errors_file}" if outcome.errors_file else "")
          + (f"; {job['message']}" if job.get("message") else ""))
    return outcome.exit_status


def cmd_reevaluate(args: argparse.Namespace, *, url: str, environ: dict[str, str]) -> int:
    """`everydoor reevaluate RULESET`."""
    try:
        outcome = follow_reevaluation(args.ruleset, url=url, token=token_for(args, environ),
                                      interval=args.interval)
    except (JobError, httpx.HTTPError) as exc:
        print(f"everydoor reevaluate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    job = outcome.job
    print(f"re-evaluation {job['job_id']} of {args.ruleset}: {job['status']} — "
          f"{job['processed']:,} households, {job['changed']:,} changed in "
          f"{outcome.seconds:.1f} s ({job['processed'] / max(outcome.seconds, 1e-6):,.0f}/s)"
          + (f"; {job['error']}" if job.get("error") else ""))
    return EXIT_OK if job["status"] == "done" else EXIT_FAILED


def add_parsers(sub: Any) -> None:
    """The two commands on `everydoor`'s sub-parsers."""
    def common(p: argparse.ArgumentParser, role: str) -> None:
        p.add_argument("--token", default=None, help="bearer token (default EVERYDOOR_TOKEN; "
                                                     "in dev mode a dev token of --role)")
        p.add_argument("--role", default=role, help=f"dev token role (default {role})")
        p.add_argument("--scope", default="VN", help="dev token scope (default VN)")
        p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")

    imp = sub.add_parser("import", help="upload households or visits (NDJSON or CSV) and follow "
                                        "the job")
    imp.add_argument("file")
    imp.add_argument("--format", choices=("ndjson", "csv"), default=None,
                     help="default: by the file's extension")
    imp.add_argument("--kind", choices=("households", "visits"), default="households",
                     help="what each line is (default households)")
    common(imp, "national_admin")
    imp.set_defaults(func=lambda a: _dispatch(cmd_import, a, "registry"))
    rev = sub.add_parser("reevaluate", help="re-decide every household of a rule set, followed")
    rev.add_argument("ruleset")
    common(rev, "national_admin")
    rev.set_defaults(func=lambda a: _dispatch(cmd_reevaluate, a, "eligibility"))


def _dispatch(command: Callable[..., int], args: argparse.Namespace, service: str) -> int:
    import os

    from services.cli import service_urls

    url = getattr(service_urls(), service)
    return command(args, url=url, environ=dict(os.environ))
