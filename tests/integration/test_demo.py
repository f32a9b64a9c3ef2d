"""``onewindow demo`` on a fresh embedded database: one line per case, every path with its outcome."""

from __future__ import annotations

from engine.demo import run_demo


def test_demo_runs_every_path_with_the_expected_outcome(tmp_path) -> None:
    lines: list[str] = []
    assert run_demo(f"sqlite:///{tmp_path / 'demo.db'}", out=lines.append) == 0
    rows = [line.split() for line in lines[1:]]
    outcome = {row[-1]: (row[2], row[3], row[5]) for row in rows}
    assert len(rows) == 12
    assert outcome["不予受理"] == ("不予受理", "不予受理", "-")
    assert outcome["审查→不予许可→送达决定书"][:2] == ("已送达", "不予许可")
    assert outcome["审查超期→督办（红牌）→准予"] == ("已送达", "准予许可", "超期办结")
    assert outcome["点餐式并联审批：卫健不予许可"][1] == "不予许可"
    assert outcome["容缺受理：跨春节逾期未补正→终止"][0] == "已终止"
    assert outcome["容缺受理：春节前受理，按期补正后发证"][:2] == ("已送达", "准予许可")
    assert all(row[0][6] == "-" and row[0][11] == "-" for row in rows)  # readable case numbers
