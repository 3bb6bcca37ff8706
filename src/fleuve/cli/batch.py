"""`fleuve run`: the daily batch, every step of the data flow in order."""

from __future__ import annotations

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleuve.cli.context import Context, as_user_option, check_user, console, pass_ctx
from fleuve.plugins import source_services
from fleuve.project import Project


@click.command()
@as_user_option
@pass_ctx
def run(ctx: Context, as_user: str | None) -> None:
    """Run the daily batch: ingest → bronze → dbt layers with tests → reflections → warm-up."""
    project = ctx.project()
    check_user(project, as_user, "RUN PIPELINES", "running the pipeline")
    with source_services(project.settings):
        run_pipeline_with_progress(project)


def run_pipeline_with_progress(project: Project) -> None:
    """Run the pipeline, one line per step as it ends; raise its error if a step failed."""
    from fleuve.pipeline import STEPS, StepOutcome, run_pipeline

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(STEPS))

        def on_step(outcome: StepOutcome) -> None:
            if outcome.status == "running":
                progress.update(task, description=outcome.title)
            else:
                progress.advance(task)
                mark = "[green]✓[/]" if outcome.status == "succeeded" else "[red]✗[/]"
                progress.console.print(
                    f"{mark} {outcome.title:<28} {outcome.seconds:6.2f}s  {outcome.summary}",
                    highlight=False,
                )

        report = run_pipeline(project, on_step=on_step)
    if report.error:
        table = Table("step", "status", "seconds", title=f"Pipeline run {report.run_id} failed")
        for st in report.steps:
            table.add_row(st.name, st.status, f"{st.seconds:.2f}" if st.status != "skipped" else "")
        console.print(table)
        raise report.error
    console.print(f"[bold green]Pipeline run {report.run_id} succeeded[/] in {report.seconds:.1f}s")
