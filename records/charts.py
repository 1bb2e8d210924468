"""Charts of a patient's daily rollups as inline SVG, drawn on the server: the admin's per-patient vitals page.

No JavaScript and nothing fetched from the internet; the template only places the shapes computed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from accounts.models import User
from health_metrics.catalog import get_catalog
from health_metrics.models import DailyHealthScore, DailySummary
from health_metrics.scoring import normal_ranges

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 12, 24
COLORS = ("#2f6fab", "#c0392b", "#1e8449")


@dataclass(frozen=True, slots=True)
class ChartSpec:
    title: str
    unit: str
    series: tuple[tuple[str, str, str], ...]  # (metric code, rollup figure, label)
    bars: bool = False


VITALS = (
    ChartSpec("Heart rate", "bpm", (("heart_rate", "mean", "Daily mean"), ("resting_heart_rate", "mean", "Resting"))),
    ChartSpec(
        "Blood pressure",
        "mmHg",
        (("blood_pressure", "mean", "Systolic"), ("blood_pressure", "secondary_mean", "Diastolic")),
    ),
    ChartSpec("Weight", "kg", (("body_weight", "mean", "Weight"),)),
    ChartSpec("Glucose", "mg/dL", (("blood_glucose", "mean", "Blood glucose"), ("glucose_cgm", "mean", "CGM"))),
    ChartSpec("Oxygen saturation (SpO2)", "%", (("oxygen_saturation", "mean", "Daily mean"),)),
    ChartSpec("Steps", "steps", (("steps", "sum", "Daily total"),), bars=True),
)


@dataclass(slots=True)
class Mark:
    """A point (x, y) with its hover text, or a tick or guide line at a position with its label."""

    x: float
    y: float
    label: str


@dataclass(slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(slots=True)
class Series:
    label: str
    color: str
    latest: str
    segments: list[str] = field(default_factory=list)  # polyline points; a missing day breaks the line
    dots: list[Mark] = field(default_factory=list)


@dataclass(slots=True)
class Chart:
    title: str
    unit: str
    series: list[Series]
    bars: list[Bar]
    y_ticks: list[Mark]
    x_ticks: list[Mark]
    guides: list[Mark]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def has_data(self) -> bool:
        return bool(self.bars or any(s.dots for s in self.series))


def _label(value: float) -> str:
    return f"{round(value, 1):,g}"


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def _nice_step(span: float, count: int = 4) -> float:
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _scale(values: list[float], *, from_zero: bool) -> tuple[float, float, list[float]]:
    """A y-range with round ticks that covers the values (and zero for bars)."""
    low, high = (0.0 if from_zero else min(values)), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    step = _nice_step(high - low)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [low + i * step for i in range(round((high - low) / step) + 1)]
    return low, high, ticks


def draw(
    *,
    title: str,
    unit: str,
    days: list[date],
    series: list[tuple[str, dict[date, float]]],
    guides: Sequence[float] = (),
    include: Sequence[float] = (),
    bars: bool = False,
) -> Chart:
    """One chart over `days` (oldest first): lines (or bars, for totals), with dashed guides at the normal range.

    The y-axis covers the values, the guides and `include`; bars start from zero.
    """
    chart = Chart(title=title, unit=unit, series=[], bars=[], y_ticks=[], x_ticks=[], guides=[])
    values = [v for _, by_day in series for v in by_day.values()]
    if not values:
        return chart
    low, high, ticks = _scale([*values, *guides, *include], from_zero=bars)
    slot = (chart.right - chart.left) / len(days)

    def x_of(index: int) -> float:
        return round(chart.left + (index + 0.5) * slot, 1)

    def y_of(value: float) -> float:
        return round(chart.bottom - (value - low) / (high - low) * (chart.bottom - chart.top), 1)

    chart.y_ticks = [Mark(chart.left, y_of(t), _label(t)) for t in ticks]
    chart.guides = [Mark(chart.left, y_of(g), f"normal range limit {_label(g)} {unit}") for g in guides]
    step = 7 if len(days) <= 31 else 14
    chart.x_ticks = [Mark(x_of(i), chart.bottom, _day_label(days[i])) for i in range(0, len(days), step)]
    for number, (label, by_day) in enumerate(series):
        if not by_day:
            continue
        last = max(by_day)
        line = Series(label, COLORS[number % len(COLORS)], f"{_label(by_day[last])} {unit} on {_day_label(last)}")
        points: list[str] = []
        for index, day in enumerate(days):
            if day not in by_day:
                if points:
                    line.segments.append(" ".join(points))
                points = []
                continue
            hover = f"{_day_label(day)}: {_label(by_day[day])} {unit}"
            if bars:
                top = y_of(by_day[day])
                chart.bars.append(
                    Bar(round(x_of(index) - slot * 0.35, 1), top, round(slot * 0.7, 1), chart.bottom - top, hover)
                )
                continue
            line.dots.append(Mark(x_of(index), y_of(by_day[day]), hover))
            points.append(f"{x_of(index)},{y_of(by_day[day])}")
        if points:
            line.segments.append(" ".join(points))
        chart.series.append(line)
    return chart


def vitals_charts(*, patient: User, days: int, today: date) -> list[Chart]:
    """The main vitals over the `days` local days up to `today`, from the daily rollups (two queries)."""
    catalog = get_catalog()
    window = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    types = {code: catalog.resolve(code) for spec in VITALS for code, _, _ in spec.series}
    rows = DailySummary.objects.filter(
        user=patient,
        metric_type_id__in=[t.id for t in types.values()],
        local_date__gte=window[0],
        local_date__lte=today,
    ).order_by()
    by_type: dict[int, list[DailySummary]] = {}
    for row in rows:
        by_type.setdefault(row.metric_type_id, []).append(row)
    ranges = normal_ranges(user=patient)
    charts = []
    for spec in VITALS:
        series = [
            (label, {row.local_date: getattr(row, figure) for row in by_type.get(types[code].id, [])})
            for code, figure, label in spec.series
        ]
        limits = ranges.get(types[spec.series[0][0]].id)
        guides = [] if limits is None else [g for g in (limits.warn_low, limits.warn_high) if g is not None]
        if limits is not None and limits.secondary_warn_high is not None:
            guides.append(limits.secondary_warn_high)
        charts.append(
            draw(
                title=spec.title, unit=spec.unit, days=window, series=series, guides=sorted(set(guides)), bars=spec.bars
            )
        )
    return charts


def score_chart(*, scores: list[DailyHealthScore], days: int, today: date) -> Chart:
    window = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    return draw(
        title="Daily health score",
        unit="/ 100",
        days=window,
        series=[("Score", {s.local_date: s.score for s in scores})],
        include=[0, 100],
    )
