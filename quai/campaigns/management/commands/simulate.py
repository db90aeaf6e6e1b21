"""``manage.py simulate flash-sale``: a simulated flash-sale day through Quai's real services (docs/SIMULATION.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from quai.campaigns.simulation.params import WHAT_IFS, ParamsError, SimulationParams, params_check


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
        from quai.campaigns.simulation import scratch

        if options["scratch"] and not scratch.in_scratch():
            argv = ["simulate", "flash-sale", f"--seed={params.seed}", f"--orders={params.orders}"]
            argv += [f"--spike={params.spike}", f"--hours={params.hours}", f"--report={report}"]
            argv.append(f"--lang={options['lang']}")
            if params.what_if:
                argv.append(f"--what-if={params.what_if}")
            if figures is not None:
                argv.append(f"--json={figures}")
            with scratch.scratch_database(seed=params.seed, keep=options["keep"]) as url:
                self.stderr.write(f"scratch database: {url}")
                code = scratch.run_in_child(url=url, argv=argv)
            if code != 0:
                raise CommandError(f"The simulation failed in its scratch database (exit {code}).")
            return
        if scratch.in_scratch():
            call_command("migrate", verbosity=0, interactive=False)
        else:
            found = scratch.data_found()
            if found:
                what = ", ".join(f"{count:,} {name}" for name, count in found.items())
                raise CommandError(
                    f"This database holds data ({what}): a simulation writes a whole world into it. "
                    "Run it with --scratch (a database of its own, dropped afterwards)."
                )
        from quai.campaigns.simulation.engine import progress_to, simulate
        from quai.campaigns.simulation.report import report_html, report_text, run_figures

        run = simulate(params, progress=progress_to(self.stdout._out if hasattr(self.stdout, "_out") else sys.stdout))
        self.stdout.write("")
        result = run_figures(run)
        report.parent.mkdir(parents=True, exist_ok=True)
        with translation.override(options["lang"]):
            report.write_text(report_html(run, result), encoding="utf-8")
            summary = report_text(result)
        if figures is not None:
            figures.parent.mkdir(parents=True, exist_ok=True)
            figures.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        self.stdout.write(summary)
        self.stdout.write(f"report: {report}")
