"""The health report: notebooks/health_report.ipynb executed by papermill, plus an HTML copy.

The notebook reads only files of the run folder, never the warehouse: the embedded engine
admits one process (the notebook's kernel is another one), and a report must be
reproducible from its inputs. So `step_health_report` first exports what the notebook needs
into `<run>/report_data/` and closes its ClickHouse client, then runs the notebook:

    report_data/run.json              run id, start, trigger, status (when known)
    report_data/steps.json            this run's steps: status, duration, message
    report_data/history.json          recent runs: status, duration, freshness, row counts
    report_data/table_counts.json     rows per raw and mart table now
    report_data/top_wallets.parquet   the top wallets of each category by realized PnL
    report_data/pnl_by_category.parquet  realized, and (issue 13) unrealized, total, open value
    report_data/leaderboard_30d.parquet  the top wallets by realized PnL over 30 days
    health.json, gx_results.json      written by the health and quality steps

Output: `<run>/health_report.ipynb` and `<run>/health_report.html` (no code cells).
`runner.py report --run-id ID` renders again from the stored inputs.

Jupyter's own state (config, data, runtime, IPython and matplotlib dirs) is kept under
CASCADIAN_HOME/jupyter, and the kernel `python3` there runs this interpreter (the .venv's)
through a launcher that makes the kernel die with the run (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from health.checks import CRITICAL, required_tables, run_checks
from health.quality import RESULTS_FILE, plain_frame
from health.steps import FINAL_FILE
from pipeline import history, names, warehouse
from pipeline.config import PROJECT_ROOT, HealthSettings, Settings, environ_updated
from pipeline.redact import redact, redact_obj
from pipeline.steps import FAILED, RunContext, StepResult

log = logging.getLogger(__name__)

NOTEBOOK = PROJECT_ROOT / "notebooks" / "health_report.ipynb"
KERNEL_NAME = "python3"
DATA = "report_data"
OUTPUT_NOTEBOOK = "health_report.ipynb"
OUTPUT_HTML = "health_report.html"

TOP_WALLETS_SQL = """
SELECT category, wallet, realized_pnl_usd, volume_usd, n_markets, n_resolved_markets, wins, losses,
       win_rate, roi
FROM analytics.fct_wallet_category_pnl
WHERE realized_pnl IS NOT NULL
ORDER BY category, realized_pnl DESC, wallet
LIMIT {n:UInt32} BY category
"""
TOP_WALLETS_COLUMNS = [
    "category",
    "wallet",
    "realized_pnl_usd",
    "volume_usd",
    "n_markets",
    "n_resolved_markets",
    "wins",
    "losses",
    "win_rate",
    "roi",
]
PNL_SQL = """
SELECT category,
       count()                              AS wallets,
       sum(ifNull(realized_pnl_usd, 0))     AS realized_pnl_usd,
       {marks}
       sum(volume_usd)                      AS volume_usd,
       sum(n_fills)                         AS fills,
       countIf(realized_pnl > 0)            AS winning_wallets,
       countIf(realized_pnl < 0)            AS losing_wallets
FROM analytics.fct_wallet_category_pnl
GROUP BY category
ORDER BY realized_pnl_usd DESC
"""
# Marked to market (issue 13): the category mart's unrealized, total and open value.
MARK_COLUMNS = ["unrealized_pnl_usd", "total_pnl_usd", "open_value_usd"]
PNL_MARKS = "".join(f"sum(ifNull({c}, 0)) AS {c},\n       " for c in MARK_COLUMNS)
PNL_COLUMNS = [
    "category",
    "wallets",
    "realized_pnl_usd",
    "volume_usd",
    "fills",
    "winning_wallets",
    "losing_wallets",
]

# The leaderboard model (issue 13): the top wallets by realized PnL over the last 30 days,
# all categories (category ''), as the API ranks them.
LEADERBOARD = names.FCT_LEADERBOARD
LEADERBOARD_WINDOW = "30d"
LEADERBOARD_SQL = f"""
SELECT rank_pnl, wallet, realized_pnl_usd, volume_usd, n_fills, rank_volume, window_start, as_of_day
FROM analytics.{LEADERBOARD}
WHERE time_window = {{window:String}} AND category = ''
ORDER BY rank_pnl
LIMIT {{n:UInt32}}
"""
LEADERBOARD_COLUMNS = [
    "rank_pnl",
    "wallet",
    "realized_pnl_usd",
    "volume_usd",
    "n_fills",
    "rank_volume",
    "window_start",
    "as_of_day",
]


def pnl_by_category(ch) -> Any:
    """PnL per category, with unrealized, total and open value when the mart has them."""
    present = {
        name
        for (name,) in ch.query(
            "SELECT name FROM system.columns WHERE database = 'analytics' "
            "AND table = 'fct_wallet_category_pnl'"
        ).result_rows
    }
    marked = all(c in present for c in MARK_COLUMNS)
    columns = PNL_COLUMNS[:3] + (MARK_COLUMNS if marked else []) + PNL_COLUMNS[3:]
    return warehouse.query_frame(ch, PNL_SQL.format(marks=PNL_MARKS if marked else ""), columns)


class ReportError(RuntimeError):
    """The notebook could not be rendered."""


def find_run_folder(settings: Settings, run_id: str) -> Path | None:
    found = (
        sorted(p for p in settings.reports_dir.glob(f"*/{run_id}") if p.is_dir())
        if settings.reports_dir.is_dir()
        else []
    )
    return found[-1] if found else None


def _write_json(path: Path, value: Any) -> None:
    """Report data with every configured secret masked (error texts may echo one)."""
    path.write_text(json.dumps(redact_obj(json.loads(json.dumps(value, default=str))), indent=2))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# --- what the notebook reads --------------------------------------------------------------


def steps_from_context(ctx: RunContext) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "status": r.status,
            "seconds": r.seconds,
            "message": r.message,
            "rows_in": r.rows_in,
            "rows_out": r.rows_out,
            "error": r.error,
            "started_at": r.started_at.isoformat() if r.started_at else None,
        }
        for name, r in ctx.results.items()
    ]


def steps_from_summary(summary: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("name", "status", "seconds", "message", "rows_in", "rows_out", "error", "started_at")
    return [{k: s.get(k) for k in keys} for s in summary.get("steps", [])]


def _history_row(
    run_id: str,
    started_at: str | None,
    status: str | None,
    seconds: float | None,
    health: dict[str, Any] | None,
    summary: dict[str, Any] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started_at,
        "status": status,
        "seconds": seconds,
        "health": health.get("status") if health else None,
        "trade_age_hours": None,
        "file_age_hours": {},
        "rows": {},
    }
    checks = {c["name"]: c for c in (health or {}).get("checks", [])}
    if "trade_freshness" in checks:
        row["trade_age_hours"] = checks["trade_freshness"]["details"].get("age_hours")
    if "reference_freshness" in checks:
        files = checks["reference_freshness"]["details"].get("files", {})
        row["file_age_hours"] = {n: f.get("age_hours") for n, f in files.items() if f.get("exists")}
    if "tables" in checks:
        tables = checks["tables"]["details"].get("tables", {})
        row["rows"] = {t: v.get("rows") for t, v in tables.items()}
    elif summary:  # runs recorded before the healthcheck existed: what their steps said
        for step in summary.get("steps", []):
            details = step.get("details") or {}
            if "raw_rows" in details:
                row["rows"]["raw.order_filled"] = details["raw_rows"]
            for mart, n in (details.get("mart_rows") or {}).items():
                row["rows"][f"analytics.{mart}"] = n
    return row


def recent_history(
    settings: Settings, hs: HealthSettings, current: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Recent runs, oldest first, ending with the current one (not yet summarized)."""
    rows = []
    for summary in history.recent_runs(settings, limit=hs.report_runs):
        folder = history.run_folder(settings, summary["run_id"], summary["started_at"])
        rows.append(
            _history_row(
                summary["run_id"],
                summary.get("started_at"),
                summary.get("status"),
                summary.get("seconds"),
                _read_json(folder / FINAL_FILE),
                summary,
            )
        )
    rows.reverse()
    if current:  # this run as the report knows it (its summary still says `running`)
        rows = [r for r in rows if r["run_id"] != current["run_id"]] + [current]
    return rows[-hs.report_runs :]


def export_report_data(
    settings: Settings, folder: Path, hs: HealthSettings, *, ctx: RunContext | None = None
) -> dict[str, Any]:
    """Everything the notebook needs, from the warehouse and the run, into `<folder>/report_data`.

    The ClickHouse client is closed when this returns. A warehouse that cannot be reached
    (the night that most needs its report) leaves the counts and PnL out, says why, and the
    rest of the report is still made."""
    data = folder / DATA
    data.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int | None] = {}
    top = pnl = board = None
    warehouse_error = None
    try:
        with warehouse.connect(settings) as ch:
            present = {
                f"{db}.{t}"
                for db, t in ch.query(
                    "SELECT database, name FROM system.tables WHERE database IN ('raw', 'analytics')"
                ).result_rows
            }
            counts = {
                t: (int(ch.command(f"SELECT count() FROM {t}")) if t in present else None)
                for t in required_tables()
            }
            if "analytics.fct_wallet_category_pnl" in present:
                top = warehouse.query_frame(
                    ch, TOP_WALLETS_SQL, TOP_WALLETS_COLUMNS, {"n": hs.report_top_wallets}
                )
                pnl = pnl_by_category(ch)
            if f"analytics.{LEADERBOARD}" in present:
                board = warehouse.query_frame(
                    ch,
                    LEADERBOARD_SQL,
                    LEADERBOARD_COLUMNS,
                    {"window": LEADERBOARD_WINDOW, "n": hs.report_top_wallets},
                )
    except (warehouse.WarehouseUnavailable, warehouse.WarehouseBusy) as exc:
        warehouse_error = str(exc).splitlines()[0]  # the report says so at its top
    exported: dict[str, Any] = {"table_counts": counts}
    if warehouse_error:
        exported["warehouse_error"] = warehouse_error
    _write_json(data / "table_counts.json", counts)
    for name, frame in (("top_wallets", top), ("pnl_by_category", pnl), ("leaderboard_30d", board)):
        path = data / f"{name}.parquet"
        if frame is None:
            path.unlink(missing_ok=True)
            continue
        plain_frame(frame).to_parquet(path, index=False)
        exported[name] = len(frame)
    if ctx is not None:
        _write_json(data / "steps.json", steps_from_context(ctx))
        # the report is the run's last step: the status of everything before it is the
        # night's status (`runner.py report` re-renders from the summary once it exists)
        status = ctx.status_so_far()
        _write_json(
            data / "run.json",
            {
                "run_id": ctx.run_id,
                "trigger": ctx.trigger,
                "started_at": ctx.started_at.isoformat(),
                "status": status,
                "settings": settings.describe(),
                "data_error": f"warehouse not reachable: {warehouse_error}" if warehouse_error else None,
            },
        )
        health = _read_json(folder / FINAL_FILE)
        current = _history_row(ctx.run_id, ctx.started_at.isoformat(), status, None, health, None)
        current["rows"] = counts or current["rows"]
        _write_json(data / "history.json", recent_history(settings, hs, current))
    return exported


def refresh_from_summary(settings: Settings, folder: Path, hs: HealthSettings) -> None:
    """For a re-render: once the run has its summary, its steps and status come from there."""
    summary = _read_json(folder / "summary.json")
    data = folder / DATA
    data.mkdir(parents=True, exist_ok=True)
    if summary:
        before = _read_json(data / "run.json") or {}
        _write_json(data / "steps.json", steps_from_summary(summary))
        _write_json(
            data / "run.json",
            {
                **{
                    k: summary.get(k)
                    for k in (
                        "run_id",
                        "trigger",
                        "started_at",
                        "finished_at",
                        "status",
                        "seconds",
                        "settings",
                    )
                },
                "data_error": before.get("data_error"),
            },
        )
    if not summary:
        return
    rows = _read_json(data / "history.json")
    if rows is None:
        current = _history_row(
            summary["run_id"],
            summary.get("started_at"),
            summary.get("status"),
            summary.get("seconds"),
            _read_json(folder / FINAL_FILE),
            summary,
        )
        rows = recent_history(settings, hs, current)
    for row in rows:  # the run was still running when its report was first made
        if row.get("run_id") == summary["run_id"]:
            row.update(status=summary.get("status"), seconds=summary.get("seconds"))
    _write_json(data / "history.json", rows)


def _redact_file(path: Path) -> None:
    """Mask secrets in a rendered file (its inputs are masked already; an output a cell
    printed from elsewhere might not be)."""
    text = path.read_text(encoding="utf-8")
    masked = redact(text)
    if masked != text:
        path.write_text(masked, encoding="utf-8")


# --- Jupyter, kept inside the project -----------------------------------------------------


def jupyter_env(settings: Settings) -> dict[str, str]:
    base = settings.home / "jupyter"
    return {
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "MPLCONFIGDIR": str(base / "matplotlib"),
        "JUPYTER_PLATFORM_DIRS": "1",
        # inside a virtualenv Jupyter would look in .venv/share first; ours is found first
        "JUPYTER_PREFER_ENV_PATH": "0",
        "TZ": "UTC",
    }


# The kernel's launcher, installed beside its kernelspec. It asks Linux to SIGKILL the
# kernel when the process that started it dies (PR_SET_PDEATHSIG): a run killed with SIGKILL
# (no handler runs) then takes its kernel along. ipykernel's own parent poller only starts
# after the kernel has loaded, and only notices a new parent of pid 1: a run killed while its
# kernel starts, under a service manager that adopts orphans, left the kernel running.
KERNEL_LAUNCHER = '''"""Cascadian: start ipykernel so that it dies with the process that started it."""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
parent = int(os.environ.get("JPY_PARENT_PID") or 0)
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:  # it died before the request took effect
        os._exit(1)
from ipykernel import kernelapp

kernelapp.launch_new_instance()
'''
LAUNCHER_FILE = "launch_kernel.py"


def ensure_kernelspec(data_dir: Path) -> Path:
    """A `python3` kernelspec in the project's Jupyter data dir that runs this interpreter
    through the launcher above (what `ipykernel install --prefix` would write, plus the
    launcher, without a subprocess)."""
    spec_dir = data_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    launcher = spec_dir / LAUNCHER_FILE
    if not launcher.is_file() or launcher.read_text() != KERNEL_LAUNCHER:
        launcher.write_text(KERNEL_LAUNCHER)
    spec = {
        "argv": [
            sys.executable,
            str(launcher),
            "-f",
            "{connection_file}",
            # not its TCP-without-encryption notice, nor "KeyboardInterrupt caught" at shutdown
            "--IPKernelApp.log_level=CRITICAL",
        ],
        "display_name": "Python 3 (Cascadian .venv)",
        "language": "python",
        "env": {"TZ": "UTC"},
        "metadata": {"debugger": False, "supported_encryption": ["curve"]},
    }
    path = spec_dir / "kernel.json"
    if _read_json(path) != spec:
        path.write_text(json.dumps(spec, indent=1))
    return path


@contextlib.contextmanager
def project_jupyter(settings: Settings) -> Iterator[dict[str, str]]:
    env = jupyter_env(settings)
    for key in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "IPYTHONDIR",
        "MPLCONFIGDIR",
    ):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    ensure_kernelspec(Path(env["JUPYTER_DATA_DIR"]))
    with environ_updated(env):
        yield env


def export_html(notebook: Path, html: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    quiet = logging.getLogger("traitlets")  # not its "alternative text is missing" notice on charts
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    finally:
        quiet.setLevel(level)
    html.write_text(body, encoding="utf-8")
    return html


def render(settings: Settings, folder: Path, hs: HealthSettings) -> dict[str, Any]:
    """Execute the notebook on `folder`'s inputs; write the notebook and its HTML copy."""
    import papermill

    logging.getLogger("papermill").setLevel(logging.WARNING)
    out_nb, out_html = folder / OUTPUT_NOTEBOOK, folder / OUTPUT_HTML
    started = time.monotonic()
    error = None
    with project_jupyter(settings):
        try:
            papermill.execute_notebook(
                str(NOTEBOOK),
                str(out_nb),
                parameters={"run_folder": str(folder)},
                kernel_name=KERNEL_NAME,
                cwd=str(folder),
                progress_bar=False,
                log_output=False,
                execution_timeout=int(hs.report_timeout_s),
                request_save_on_cell_execute=False,
            )
        except papermill.PapermillExecutionError as exc:
            error = f"notebook cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
        except Exception as exc:  # kernel failed to start, timeout, ...
            error = f"{type(exc).__name__}: {exc}"
    executed = round(time.monotonic() - started, 3)
    if out_nb.exists():  # a failed run still leaves the notebook up to the failing cell
        _redact_file(out_nb)
        export_html(out_nb, out_html)
        _redact_file(out_html)
    if error:
        raise ReportError(error)
    return {
        "notebook": str(out_nb),
        "html": str(out_html),
        "execute_seconds": executed,
        "seconds": round(time.monotonic() - started, 3),
    }


# --- the pipeline step and the command ----------------------------------------------------


def step_health_report(ctx: RunContext) -> StepResult:
    """Pipeline step (last): export the report's inputs, close the warehouse, run papermill."""
    settings = ctx.settings
    hs = settings.health
    folder = history.run_folder(settings, ctx.run_id, ctx.started_at.isoformat())
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / FINAL_FILE).exists():  # no final health step before this one: check now
        _write_json(folder / FINAL_FILE, run_checks(settings, hs, now=ctx.started_at, run=ctx))
    exported = export_report_data(settings, folder, hs, ctx=ctx)
    details: dict[str, Any] = {"folder": str(folder), "exported": exported}
    try:
        details.update(render(settings, folder, hs))
    except ReportError as exc:
        return StepResult(status=FAILED, message="health report failed", error=str(exc), details=details)
    health = _read_json(folder / FINAL_FILE) or {}
    result = StepResult(message=f"report: {folder / OUTPUT_HTML}", details=details)
    if health.get("status") == CRITICAL:
        result.warnings.append(f"the health report shows critical checks: {folder / OUTPUT_HTML}")
    if not (folder / RESULTS_FILE).exists():
        result.warnings.append("no Great Expectations results in this run's folder")
    return result


def main(run_id: str) -> int:
    """`runner.py report --run-id ID`: render the run's report again from its stored inputs."""
    from pipeline.config import load_settings

    settings = load_settings()
    hs = settings.health
    folder = find_run_folder(settings, run_id)
    if folder is None:
        print(f"no run {run_id!r} under {settings.reports_dir}", file=sys.stderr)
        return 2
    refresh_from_summary(settings, folder, hs)
    try:
        out = render(settings, folder, hs)
    except ReportError as exc:
        print(f"report failed: {exc}", file=sys.stderr)
        return 2
    print(f"report: {out['html']}")
    print(f"notebook: {out['notebook']}")
    return 0
