"""report.html (issue 14): one page with everything a fit directory holds, self-contained.

A fit directory of each kind of model is written once (a few optimizer steps), and the
page read back as HTML: every section is there, every figure of plots/ is embedded, no
address leaves the page, a missing Graphviz or plots/ folder is said in words, and
``bpm report DIR`` writes the same page again. The browser test is test_report_browser.py.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from bpm.runtime.plots import mark_stages, pyplot  # noqa: E402


def test_the_history_marks_where_each_optimizer_stage_begins():
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([50, 200, 260], [3.0, 2.6, 2.5])  # the first check after step 0
    mark_stages(ax, [{"stage": "adam", "iterations": 200}, {"stage": "lbfgs", "iterations": 60}])
    assert [line.get_xdata()[0] for line in ax.lines[1:]] == [200]  # one boundary
    names = {text.get_text().strip(): text.xy[0] for text in ax.texts}
    assert names == {"adam": ax.get_xlim()[0], "lbfgs": 200}  # the first inside the axes
    assert 0 < ax.get_xlim()[0] < 50
    plt.close(fig)
