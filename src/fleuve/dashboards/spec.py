"""The dashboards-as-code model: charts, shared filters and dashboards, as written in YAML."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ChartType = Literal["line", "bar", "area", "pie", "table", "big_number"]
Aggregate = Literal["sum", "count", "avg", "min", "max", "count_distinct"]
TimeGrain = Literal["day", "week", "month", "quarter", "year"]
Operator = Literal["=", "!=", ">", ">=", "<", "<=", "in", "not in", "is null", "is not null"]
DATE_PRESETS = {"last_7_days": 7, "last_30_days": 30, "last_90_days": 90, "last_365_days": 365}
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("use 1-128 lowercase letters, digits, '-' or '_', e.g. 'daily-revenue'")
    return value


class Measure(_Model):
    """An aggregate over a column (or over rows, for `count` without a column)."""

    agg: Aggregate = Field("sum", description="sum, count, avg, min, max or count_distinct")
    column: str | None = Field(None, description="the column aggregated; omit for count of rows")
    label: str | None = Field(None, description="the name shown in legends and grids")

    @model_validator(mode="after")
    def _column_needed(self) -> Measure:
        if self.column is None and self.agg != "count":
            raise ValueError(f"the '{self.agg}' measure needs a column")
        return self

    @property
    def name(self) -> str:
        """The result column's name."""
        return self.label or f"{self.agg}_{self.column or 'rows'}"


class Condition(_Model):
    """A fixed filter of a chart, e.g. status = 'completed'."""

    column: str
    op: Operator = "="
    value: Any = None


class ChartSpec(_Model):
    """One chart: where its rows come from and how they are drawn."""

    name: str = Field(..., description="identifier within its dashboard, e.g. 'daily-revenue'")
    title: str
    description: str | None = None
    type: ChartType
    dataset: str | None = Field(None, description="a dataset path such as 'gold.fct_orders'")
    sql: str | None = Field(None, description="a query whose rows the chart reads instead")
    x: str | None = Field(None, description="the dimension or time column on the x axis")
    time_grain: TimeGrain | None = Field(None, description="truncate x to day, week, month...")
    series: str | None = Field(None, description="a second dimension: one line or bar per value")
    measures: list[Measure] = Field(
        default_factory=list, description="the aggregates drawn, e.g. the sum of 'amount'"
    )
    columns: list[str] = Field(default_factory=list, description="table charts: raw columns")
    where: list[Condition] = Field(default_factory=list)
    order_by: list[str] = Field(
        default_factory=list, description="result columns; '-name' sorts descending"
    )
    limit: int = Field(1000, ge=1, le=100_000)
    width: int = Field(6, ge=1, le=12, description="grid columns out of 12")
    filter_columns: dict[str, str] = Field(
        default_factory=dict, description="dashboard filter name -> this chart's column"
    )
    ignore_filters: list[str] = Field(default_factory=list)

    _name = field_validator("name")(_slug)

    @model_validator(mode="before")
    @classmethod
    def _old_measures_key(cls, data: Any) -> Any:
        # Files and saved charts from before `measures` had its name still load; both is ambiguous.
        if not isinstance(data, dict) or "metrics" not in data:
            return data
        if "measures" in data:
            raise ValueError(
                f"chart '{data.get('name')}' has both 'measures' and 'metrics' "
                "(the old name of 'measures'): keep only 'measures'"
            )
        return {("measures" if k == "metrics" else k): v for k, v in data.items()}

    @model_validator(mode="after")
    def _consistent(self) -> ChartSpec:
        if (self.dataset is None) == (self.sql is None):
            raise ValueError(f"chart '{self.name}': give exactly one of 'dataset' or 'sql'")
        if self.type == "table":
            if not self.measures and not self.columns:
                raise ValueError(f"table chart '{self.name}' needs 'columns' or 'measures'")
        elif not self.measures:
            raise ValueError(f"{self.type} chart '{self.name}' needs at least one measure")
        if self.type == "big_number" and (self.x or self.series or len(self.measures) != 1):
            raise ValueError(f"big_number chart '{self.name}' takes one measure and no x")
        if self.type in ("line", "bar", "area", "pie") and not self.x:
            raise ValueError(f"{self.type} chart '{self.name}' needs an 'x' column")
        if self.type == "pie" and (self.series or len(self.measures) != 1):
            raise ValueError(f"pie chart '{self.name}' takes one measure and no series")
        return self


class FilterSpec(_Model):
    """A filter shared by a dashboard's charts: a date range or a set of dimension values."""

    name: str
    label: str
    type: Literal["date_range", "values"]
    column: str = Field(..., description="the column filtered, unless a chart maps another")
    default: str | list[str] | None = Field(
        None, description="date_range: last_7_days, last_30_days, ... or all; values: a list"
    )
    options_dataset: str | None = Field(
        None, description="values: the dataset whose distinct values are offered"
    )

    _name = field_validator("name")(_slug)

    @model_validator(mode="after")
    def _default_fits(self) -> FilterSpec:
        if self.type == "date_range" and self.default not in (None, "all", *DATE_PRESETS):
            raise ValueError(
                f"filter '{self.name}': default must be one of all, {', '.join(DATE_PRESETS)}"
            )
        if self.type == "values" and isinstance(self.default, str):
            self.default = [self.default]
        return self


class DashboardSpec(_Model):
    """A dashboard: a grid of charts, shared filters, an optional auto-refresh."""

    slug: str
    title: str
    description: str | None = None
    refresh_seconds: int | None = Field(None, ge=10, description="auto-refresh period, >= 10")
    filters: list[FilterSpec] = Field(default_factory=list)
    charts: list[ChartSpec] = Field(default_factory=list)

    _slug_ok = field_validator("slug")(_slug)

    @model_validator(mode="after")
    def _unique_names(self) -> DashboardSpec:
        for kind, names in (
            ("chart", [c.name for c in self.charts]),
            ("filter", [f.name for f in self.filters]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"dashboard '{self.slug}': duplicate {kind} names {dupes}")
        return self

    def chart(self, name: str) -> ChartSpec | None:
        """The chart called `name`, if any."""
        return next((c for c in self.charts if c.name == name), None)
