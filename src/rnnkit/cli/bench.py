"""``rnnkit bench``: rnnkit against torch.nn, side by side (see rnnkit.bench)."""

from __future__ import annotations

import click

from rnnkit.bench import SUITES, run_suites, write_json
from rnnkit.cli._config import FilePath, new_file_in_new_dirs


@click.command()
@click.argument("suites", metavar="[SUITE]...", nargs=-1, type=click.Choice(SUITES))
@click.option("--json", "json_path", type=FilePath(),
              callback=new_file_in_new_dirs, help="Write results here (checked before the suites run).")
@click.option("--quick", is_flag=True, help="Fewer repeats and cases: a smoke run.")
@click.option("--threads", type=click.IntRange(min=1), help="torch threads [default: all cores].")
@click.option("--repeats", type=click.IntRange(min=1),
              help="Interleaved repeats [default: 9; 3 with --quick].")
def bench(suites, json_path, quick, threads, repeats):
    """Time rnnkit against torch.nn on the same work, interleaved, after an equivalence
    check (layers: both give the same numbers; scan: the compiled executor matches the
    log-space one; variants: the layer-norm, peephole, dropout and zoneout layers match
    their reference loop; stream: the step matches torch.nn's cell, int8 stays within 3%;
    fit: the first losses agree; export: the ONNX files give the layer's and torch.nn's
    numbers). ratio = anchor / rnnkit: > 1 means rnnkit is faster. Runs every suite when
    none is named (suites: layers, scan, variants, stream, fit, export; export needs the
    onnx extra and is skipped without it)."""
    report = run_suites(suites, quick=quick, repeats=repeats, threads=threads, echo=click.echo)
    if json_path:
        write_json(json_path, report)
        click.echo(f"wrote {json_path}", err=True)
    failed = [r["case"] for r in report["results"] if r["status"] not in ("ok", "skipped")]
    if failed:
        raise click.ClickException(f"{len(failed)} case(s) failed their equivalence check and were "
                                   f"not timed: {', '.join(failed)}")
