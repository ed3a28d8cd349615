"""Where the in-process time of each benchmarked page goes (pyinstrument), to find per-request
work that could be done once. `python bench/profile.py [label-substring]` prints a call tree.
"""

import sys
import tempfile

from inprocess import demo_app, pages
from pyinstrument import Profiler


def main() -> None:
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    with tempfile.TemporaryDirectory() as tmp:
        app = demo_app(f"sqlite:///{tmp}/profile.db")
        for page in pages(app):
            if wanted.lower() not in page.label.lower():
                continue
            for _ in range(20):
                page.request()
            profiler = Profiler(interval=0.0001)
            with profiler:
                for _ in range(200):
                    assert page.request().status_code == page.status
            print(f"=== {page.label} {'POST ' if page.form else ''}{page.path}")
            print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
