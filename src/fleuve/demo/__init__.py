"""The embedded showcase: a shop's sources on this machine, the whole pipeline, then serving."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from fleuve.config import CONFIG_FILE, Settings
from fleuve.demo.generate import DemoData, generate
from fleuve.demo.products import ProductService
from fleuve.project import Project

SOURCES = "sources"
DASHBOARDS = "dashboards"


def connections(api_url: str, api_key: str) -> list[dict]:
    """The demo's three connections: the shop's database, its catalog API, its event drops."""
    return [
        {
            "name": "shop_db",
            "source": {"type": "sqlite", "path": f"{SOURCES}/shop.sqlite"},
            "streams": [
                {
                    "name": "raw_customers",
                    "table": "customers",
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append_dedup",
                    "cursor_field": "updated_at",
                    "primary_key": ["customer_id"],
                },
                {
                    "name": "raw_orders",
                    "table": "orders",
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append_dedup",
                    "cursor_field": "updated_at",
                    "primary_key": ["order_id"],
                },
                {
                    "name": "raw_order_lines",
                    "table": "order_lines",
                    "sync_mode": "full_refresh",
                    "destination_sync_mode": "overwrite",
                    "primary_key": ["order_line_id"],
                },
            ],
        },
        {
            "name": "catalog_api",
            "source": {
                "type": "rest",
                "url": api_url,
                "auth": {"type": "api_key", "name": "X-API-Key", "value": api_key},
                "records_path": "data",
                "pagination": {
                    "type": "page",
                    "page_param": "page",
                    "size_param": "per_page",
                    "size": 1000,
                },
            },
            "streams": [
                {
                    "name": "raw_products",
                    "path": "/v1/products",
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append_dedup",
                    "cursor_field": "updated_at",
                    "primary_key": ["product_id"],
                    "options": {"cursor_param": "updated_since"},
                },
            ],
        },
        {
            "name": "web_drops",
            "source": {"type": "files", "path": f"{SOURCES}/drops", "format": "csv"},
            "streams": [
                {
                    "name": "raw_web_events",
                    "path": "web_events/*.csv",
                    "sync_mode": "incremental",
                    "destination_sync_mode": "append",
                    "primary_key": ["event_id"],
                },
            ],
        },
    ]


def _ship_dashboards(folder: Path) -> None:
    """Copy the demo's dashboards ("Analytique Client") unless the user has their own."""
    folder.mkdir(exist_ok=True)
    for source in sorted((Path(__file__).parent / DASHBOARDS).glob("*.yml")):
        target = folder / source.name
        if not target.exists():
            shutil.copyfile(source, target)


def prepare(project_dir: Path, orders: int, api_port: int = 9088) -> DemoData:
    """Generate the sources and write the demo's fleuve.yml (keeping its lake settings)."""
    project_dir.mkdir(parents=True, exist_ok=True)
    data = generate(project_dir / SOURCES, orders)
    _ship_dashboards(project_dir / DASHBOARDS)
    config_file = project_dir / CONFIG_FILE
    current = (
        yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.exists() else None
    )
    config = current or {"name": "fleuve-demo"}
    api_key = (config.get("demo") or {}).get("api_key") or secrets.token_urlsafe(16)
    config["demo"] = {
        "catalog": f"{SOURCES}/catalog.json",
        "api_host": "127.0.0.1",
        "api_port": api_port,
        "api_key": api_key,
    }
    config["connections"] = connections(f"http://127.0.0.1:{api_port}", api_key)
    # As the shop would run it: sources synced every 15 minutes, the batch every night.
    for conn in config["connections"]:
        conn["schedule"] = "every_15_minutes"
    config["schedules"] = [
        {"name": "nightly", "what": "pipeline", "schedule": "0 1 * * *", "timeout_minutes": 120}
    ]
    header = (
        "# The Fleuve demo project, written by `fleuve demo`.\n"
        "# The demo's catalog API runs on loopback while `fleuve demo|run|serve` runs.\n"
    )
    config_file.write_text(
        header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return data


# The dashboard's questions (orders by status, revenue by country, average basket, over any
# period starting on a day) answered from 7,300 rows instead of every order.
REFLECTIONS = {
    "demo_orders_daily": (
        "CREATE REFLECTION demo_orders_daily ON gold.fct_orders "
        "USING DIMENSIONS (date_trunc('day', order_date), status, country_code) "
        "MEASURES (SUM(amount), COUNT(*), AVG(amount))"
    ),
}


def ensure_reflections(project: Project) -> list[str]:
    """Create the demo's reflections that do not exist yet (each is built as it is created)."""
    from fleuve.engine import Engine

    with Engine(project) as engine:
        existing = {r.name for r in engine.reflections.all()}
        created = [name for name in REFLECTIONS if name not in existing]
        for name in created:
            engine.execute(REFLECTIONS[name], user="admin").read_all()
    return created


@contextmanager
def demo_sources(settings: Settings) -> Iterator[str | None]:
    """Run the demo's catalog API for the duration, when the project is a demo project."""
    demo = settings.demo
    if demo is None:
        yield None
        return
    url = f"http://{demo.api_host}:{demo.api_port}"
    try:
        httpx.get(f"{url}/health", timeout=1).raise_for_status()
        yield url  # another Fleuve process already serves it
        return
    except httpx.HTTPError:
        pass
    api = ProductService(
        settings.path(demo.catalog), demo.api_key.get_secret_value(), demo.api_host, demo.api_port
    ).start()
    try:
        yield api.url
    finally:
        api.stop()


__all__ = ["DemoData", "demo_sources", "ensure_reflections", "prepare"]
