"""The report's kernel is a child process of the run: a run killed with SIGKILL (which no
handler can catch) must not leave it running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from pipeline.config import PROJECT_ROOT
from tests.support.settings import make_settings

RENDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from health import report
    from tests.support.settings import make_settings

    root, notebook = Path(sys.argv[1]), Path(sys.argv[2])
    report.NOTEBOOK = notebook
    settings = make_settings(root)
    folder = root / "run"
    folder.mkdir(parents=True, exist_ok=True)
    report.render(settings, folder, settings.health)
""")


def _slow_notebook(path: Path, pid_file: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run_folder = "."')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(300)"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"  # a zombie is dead, awaiting its reaper
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.split(") ", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


# A service manager (systemd, a container's init, tini) adopts orphans as a "subreaper": a
# killed run's kernel then gets that process as its parent, not pid 1.
SUBREAPER = textwrap.dedent("""
    import ctypes, os, subprocess, sys, time
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    child = subprocess.Popen(sys.argv[1:])
    print(child.pid, flush=True)
    while True:  # reap whatever dies below us, until told to stop
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pass
        if os.path.exists(sys.argv[-1] + ".stop"):
            break
        time.sleep(0.05)
""")


@pytest.mark.slow
@pytest.mark.parametrize("when", ["while the kernel starts", "while a cell runs"])
def test_a_killed_run_takes_its_report_kernel_with_it(tmp_path, when):
    pid_file = tmp_path / "kernel.pid"
    notebook = _slow_notebook(tmp_path / "slow.ipynb", pid_file)
    reaper = subprocess.Popen(
        [sys.executable, "-c", SUBREAPER, sys.executable, "-c", RENDER, str(tmp_path), str(notebook)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TZ": "UTC"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    run = int(reaper.stdout.readline())
    kernel = None
    try:
        deadline = time.monotonic() + 120
        while kernel is None:
            assert _alive(run), "the render ended before its kernel started"
            assert time.monotonic() < deadline, "the kernel never started"
            if when == "while the kernel starts":
                kernel = next(iter(_children(run)), None)
            elif pid_file.exists() and pid_file.read_text():
                kernel = int(pid_file.read_text())
            time.sleep(0.02)
        assert _alive(kernel)
        os.kill(run, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(kernel) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(kernel), f"kernel {kernel} outlived the killed run"
    finally:
        for pid in (run, kernel):
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)  # never leave one behind, even when the test fails
        (Path(str(notebook) + ".stop")).write_text("")
        reaper.wait(10)


def test_the_kernelspec_launcher_is_installed_in_the_projects_jupyter_dir(tmp_path):
    from health.report import ensure_kernelspec, jupyter_env

    settings = make_settings(tmp_path)
    spec_path = ensure_kernelspec(Path(jupyter_env(settings)["JUPYTER_DATA_DIR"]))
    spec = json.loads(spec_path.read_text())
    assert spec_path.is_relative_to(settings.home)
    assert spec["argv"][0] == sys.executable
    launcher = Path(spec["argv"][1])
    assert launcher.parent == spec_path.parent and "PR_SET_PDEATHSIG" in launcher.read_text()
