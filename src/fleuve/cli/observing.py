"""`fleuve alerts` and `fleuve observe`: the alerts' states and history, and what Prometheus and
Grafana need to watch a project."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich import box
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, as_user_option, check_user, console, pass_ctx


@click.group(cls=FleuveGroup, invoke_without_command=True)
@click.pass_context
def alerts(click_ctx: click.Context) -> None:
    """Alerts: the rules of fleuve.yml with their state, and what fired and resolved.

    Without a subcommand, the same as `fleuve alerts list`.
    """
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(alerts_list)


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@as_user_option
@pass_ctx
def alerts_list(ctx: Context, as_json: bool = False, as_user: str | None = None) -> None:
    """Every alert rule with its state (ok, pending, firing) and what it watches."""
    from fleuve.observe import alerts as watch

    project = ctx.project()
    check_user(project, as_user, "MONITOR", "listing alerts")
    entries = watch.states(project)
    if as_json:
        console.print_json(json.dumps({"data": entries}))
        return
    if not entries:
        console.print("No alert rules: add them under 'alerts: rules:' in fleuve.yml.")
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for title in ("rule", "kind", "state", "subject", "since", "summary"):
        table.add_column(title, overflow="fold", no_wrap=title in ("rule", "state"))
    for entry in entries:
        subjects = entry["subjects"] or [{"subject": "", "state": "ok", "since": None}]
        for item in subjects:
            table.add_row(
                entry["rule"],
                entry["kind"],
                item["state"],
                item["subject"] or "-",
                (item["since"] or "")[:19].replace("T", " "),
                item.get("summary") or "",
            )
    console.print(table)


@alerts.command("history")
@click.option("--rule", help="Only this rule's alerts.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@as_user_option
@pass_ctx
def alerts_history(
    ctx: Context, rule: str | None, limit: int, as_json: bool, as_user: str | None
) -> None:
    """Alerts that fired and resolved, newest first, with how their notifications went."""
    from fleuve.observe import alerts as watch

    project = ctx.project()
    check_user(project, as_user, "MONITOR", "listing alerts")
    events = watch.history(project, rule, limit)
    if as_json:
        console.print_json(json.dumps({"data": events}))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for title in ("at (UTC)", "rule", "subject", "state", "notified", "summary"):
        table.add_column(title, overflow="fold")
    for e in events:
        notified = ", ".join(f"{name} {d['status']}" for name, d in e["deliveries"].items())
        table.add_row(
            (e["at"] or "")[:19].replace("T", " "),
            e["rule"],
            e["subject"] or "-",
            e["state"],
            notified or "-",
            e["summary"] or "",
        )
    console.print(table)


@alerts.command("evaluate")
@pass_ctx
def alerts_evaluate(ctx: Context) -> None:
    """Evaluate the rules once now and notify what fired or resolved.

    Servers and workers evaluate them by themselves every alerts.evaluate_every.
    """
    from fleuve.observe import alerts as watch
    from fleuve.schedule.clock import clock_from_env

    project = ctx.project()
    transitions = watch.evaluate(project, clock_from_env().now())
    for t in transitions:
        sent = ", ".join(f"{name} {d['status']}" for name, d in t.deliveries.items())
        console.print(
            f"{t.rule} {t.subject or ''}: {t.state} ({t.summary})"
            + (f"; notified {sent}" if sent else ""),
            highlight=False,
        )
    if not transitions:
        console.print("No alert fired or resolved.")


@click.group(cls=FleuveGroup)
def observe() -> None:
    """Watching the platform with Prometheus and Grafana."""


@observe.command("prometheus-rules")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write to this file (default: stdout)."
)
@pass_ctx
def prometheus_rules(ctx: Context, output: Path | None) -> None:
    """Print the alert rules of fleuve.yml as Prometheus alerting rules (YAML for rule_files)."""
    from fleuve.observe.prometheus_rules import rules_yaml

    text = rules_yaml(ctx.project(check=False).settings)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {output}", highlight=False)
    else:
        click.echo(text, nl=False)


@observe.command("grafana-dashboard")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write to this file (default: stdout)."
)
def grafana_dashboard(output: Path | None) -> None:
    """Print the Grafana dashboard for Fleuve's metrics (JSON to import into Grafana)."""
    from fleuve.observe.prometheus_rules import grafana_dashboard as dashboard

    text = json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"Wrote {output}", highlight=False)
    else:
        click.echo(text, nl=False)
