"""``make demo`` end to end: the suite runs the same entry point, so a planner added later cannot break it unseen."""

from __future__ import annotations

from edgeslice import demo
from edgeslice.plan.plan import Plan


def test_demo_picks_a_plan_checks_it_and_runs_it_on_four_processes(tmp_path, capsys):
    rc = demo.main(out_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert rc == 0, out
    best = next(line for line in out.splitlines() if line.startswith("best plan: "))
    name = best.split()[2].rstrip(",")
    assert Plan.load(tmp_path / f"vgg16-local4-{name}.json").planner == name
    assert "in-process check: rel_err" in out and "(same output)" in out
    assert "distributed output: same as the whole model" in out
    assert "running it on 4 worker processes" in out
    for line in out.splitlines():  # every planner either made the table or said in one line why it refused
        if " refused: " in line:
            assert line.strip().split()[0] in line.split(" refused: ")[1]
    assert (tmp_path / "predicted.png").stat().st_size > 0
    assert (tmp_path / "measured-vs-predicted.png").stat().st_size > 0
