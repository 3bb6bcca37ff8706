"""Fixtures for the engine: a shop in the lake, users with roles, and engines over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleuve.engine import Engine
from fleuve.project import Project, init_project
from fleuve.security.auth import create_user

# NULLs in every dimension and measure, several types, a year of timestamps.
ORDERS = """
CREATE TABLE gold.orders AS
SELECT
    i AS order_id,
    CASE WHEN i % 17 = 0 THEN NULL ELSE i % 40 END AS customer_id,
    CASE WHEN i % 23 = 0 THEN NULL ELSE ['new', 'paid', 'shipped', 'cancelled'][i % 4 + 1] END AS status,
    CASE WHEN i % 29 = 0 THEN NULL ELSE ['FR', 'DE', 'JP', 'MA', 'CN'][i % 5 + 1] END AS country,
    CASE WHEN i % 31 = 0 THEN NULL
         ELSE TIMESTAMP '2024-01-01 00:00:00' + to_minutes((i * 7919) % 525600) END AS ordered_at,
    CASE WHEN i % 13 = 0 THEN NULL ELSE ((i * 37) % 10000 / 100.0)::DECIMAL(12, 2) END AS amount,
    CASE WHEN i % 11 = 0 THEN NULL ELSE ((i * 7) % 9)::INTEGER END AS quantity,
    ((i * 3) % 1000) / 8.0 AS weight
FROM range(3000) t(i)
"""
CUSTOMERS = """
CREATE TABLE gold.customers AS
SELECT
    c AS customer_id,
    ['Émilie Durand', 'محمد العلوي', '王芳', '佐藤 花子', 'Jean Martin'][c % 5 + 1] || ' ' || c AS name,
    CASE WHEN c % 7 = 0 THEN NULL ELSE ['retail', 'pro', 'vip'][c % 3 + 1] END AS segment,
    ['Paris', 'Casablanca', '上海', '東京', 'Lyon'][c % 5 + 1] AS city
FROM range(45) t(c)
"""


def build_shop(project: Project) -> None:
    """Create gold.orders and gold.customers in the project's lake."""
    with project.lake.session() as con:
        con.execute(ORDERS)
        con.execute(CUSTOMERS)


@pytest.fixture
def engine(project: Project) -> Iterator[Engine]:
    """An engine over a fresh project holding the shop."""
    build_shop(project)
    e = Engine(project)
    try:
        yield e
    finally:
        e.close()


USERS = {"ana": ["analyst"], "dan": ["data_engineer"], "nobody": []}


def add_users(project: Project) -> None:
    """Users with roles: ana (analyst), dan (data_engineer), nobody (no role)."""
    for name, roles in USERS.items():
        create_user(project.db, name, f"password-{name}", roles=roles)


@pytest.fixture
def users(project: Project) -> dict[str, list[str]]:
    """The users of `add_users` in the test's project."""
    add_users(project)
    return USERS


def make_project(root: Path) -> Project:
    """An initialized project with the shop, for module-scoped fixtures."""
    init_project(root, "engine-test")
    p = Project.open(root)
    build_shop(p)
    return p
