"""``manage.py simulate flash-sale``: a simulated flash-sale day through Quai's real services (docs/SIMULATION.md)."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from quai.campaigns.simulation.params import (
    WHAT_IFS,
    ParamsError,
    SimulationParams,
    params_check,
    reference_check,
)


class Command(BaseCommand):
    help = "Simulate a flash-sale day (orders through the API, waves, picking, packing, trucks, tracking, tickets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", choices=["flash-sale"], help="What to simulate (flash-sale).")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same figures (default 1).")
        parser.add_argument("--orders", type=int, default=10_000, help="Orders in the day (default 10,000).")
        parser.add_argument("--spike", type=float, default=50.0, help="The sale's opening hour × an average hour.")
        parser.add_argument("--hours", type=int, default=24, help="Simulated hours, 1-24 (default 24).")
        parser.add_argument("--what-if", default="", help=f"One of {', '.join(WHAT_IFS)}.")
        parser.add_argument("--report", default="", help="Where to write the HTML report.")
        parser.add_argument("--json", default="", help="Where to write the figures as JSON (for the bench).")
        parser.add_argument(
            "--lang",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help=f"Language of the report and the summary (default {settings.LANGUAGE_CODE}).",
        )
        parser.add_argument(
            "--scratch", action="store_true", help="Run in a scratch database of its own (created, then dropped)."
        )
        parser.add_argument("--keep", action="store_true", help="With --scratch: keep the scratch database.")
        parser.add_argument(
            "--trace", default="", help="Where to write the day tick by tick and order by order (a what-if's reference)"
        )
        parser.add_argument(
            "--baseline",
            default="",
            help="With --what-if: the --trace of the same seed's normal day (else the what-if runs that day first).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            params = params_check(
                SimulationParams(
                    seed=options["seed"],
                    orders=options["orders"],
                    spike=options["spike"],
                    hours=options["hours"],
                    what_if=options["what_if"].strip(),
                )
            )
        except ParamsError as exc:
            raise CommandError(str(exc)) from None
        report = Path(options["report"] or f"var/simulation/flash-sale-seed{params.seed}.html").resolve()
        figures = Path(options["json"]).resolve() if options["json"] else None
        trace = Path(options["trace"]).resolve() if options["trace"] else None
        baseline = Path(options["baseline"]).resolve() if options["baseline"] else None
        if baseline is not None and not params.what_if:
            raise CommandError("--baseline is the reference of a what-if: give --what-if too.")
        if baseline is not None:
            self._reference_check(params, baseline)
        from quai.campaigns.simulation import scratch

        if not options["scratch"] and not scratch.in_scratch():
            found = scratch.data_found()
            if found:
                what = ", ".join(f"{count:,} {name}" for name, count in found.items())
                raise CommandError(
                    f"This database holds data ({what}): a simulation writes a whole world into it. "
                    "Run it with --scratch (a database of its own, dropped afterwards)."
                )
        with tempfile.TemporaryDirectory(prefix="quai-sim-normal-") as workspace:
            if params.what_if and baseline is None and not scratch.in_scratch():
                baseline = self._normal_day(params, Path(workspace), options)
            if options["scratch"] and not scratch.in_scratch():
                argv = self._argv(params, options, report=report)
                argv += [f"--{name}={path}" for name, path in (("json", figures), ("trace", trace)) if path]
                if baseline is not None:
                    argv.append(f"--baseline={baseline}")
                with scratch.scratch_database(seed=params.seed, keep=options["keep"]) as url:
                    self.stderr.write(f"scratch database: {url}")
                    code = scratch.run_in_child(url=url, argv=argv)
                if code != 0:
                    raise CommandError(f"The simulation failed in its scratch database (exit {code}).")
                return
            self._run_here(params, options, report=report, figures=figures, trace=trace, baseline=baseline)

    @staticmethod
    def _reference_check(params: SimulationParams, baseline: Path) -> None:
        if not baseline.is_file():
            raise CommandError(f"The reference day {baseline} does not exist: write it with --trace.")
        try:
            reference_check(params, json.loads(baseline.read_text(encoding="utf-8")))
        except (ParamsError, ValueError) as exc:
            raise CommandError(str(exc)) from None

    @staticmethod
    def _argv(params: SimulationParams, options: dict[str, Any], *, report: Path) -> list[str]:
        argv = ["simulate", "flash-sale", f"--seed={params.seed}", f"--orders={params.orders}"]
        argv += [f"--spike={params.spike}", f"--hours={params.hours}", f"--report={report}"]
        argv.append(f"--lang={options['lang']}")
        if params.what_if:
            argv.append(f"--what-if={params.what_if}")
        return argv

    def _normal_day(self, params: SimulationParams, workspace: Path, options: dict[str, Any]) -> Path:
        """The same seed's normal day, run first in a scratch database of its own: what the what-if is measured
        against. Run rather than estimated from the plan: the promise reads the live backlog, so only the day
        itself says which date each order would have had (the day is a function of the seed)."""
        from quai.campaigns.simulation import scratch

        normal = replace(params, what_if="")
        trace = workspace / "normal-day.trace.json"
        argv = [*self._argv(normal, options, report=workspace / "normal-day.html"), f"--trace={trace}"]
        self.stderr.write(f"the normal day of seed {params.seed} first (the what-if's reference):")
        with scratch.scratch_database(seed=params.seed) as url:
            code = scratch.run_in_child(url=url, argv=argv)
        if code != 0:
            raise CommandError(f"The normal day (the what-if's reference) failed in its scratch database (exit {code})")
        self.stderr.write(f"now the what-if {params.what_if}:")
        return trace

    def _run_here(
        self,
        params: SimulationParams,
        options: dict[str, Any],
        *,
        report: Path,
        figures: Path | None,
        trace: Path | None,
        baseline: Path | None,
    ) -> None:
        from quai.campaigns.simulation import scratch

        if scratch.in_scratch():
            scratch.commits_without_waiting()
            call_command("migrate", verbosity=0, interactive=False)
        from quai.campaigns.simulation.engine import progress_to, simulate
        from quai.campaigns.simulation.report import day_trace, report_html, report_text, run_figures

        reference = json.loads(baseline.read_text(encoding="utf-8")) if baseline is not None else None
        run = simulate(params, progress=progress_to(self.stdout._out if hasattr(self.stdout, "_out") else sys.stdout))
        self.stdout.write("")
        result = run_figures(run, reference)
        if trace is not None:
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text(json.dumps(day_trace(run), default=str), encoding="utf-8")
        report.parent.mkdir(parents=True, exist_ok=True)
        with translation.override(options["lang"]):
            report.write_text(report_html(run, result), encoding="utf-8")
            summary = report_text(result)
        if figures is not None:
            figures.parent.mkdir(parents=True, exist_ok=True)
            figures.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        self.stdout.write(summary)
        self.stdout.write(f"report: {report}")
