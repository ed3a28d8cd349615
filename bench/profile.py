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
        for label, client, path, headers, status in pages(app):
            if wanted.lower() not in label.lower():
                continue
            for _ in range(20):
                client.get(path, headers=headers)
            profiler = Profiler(interval=0.0001)
            with profiler:
                for _ in range(200):
                    assert client.get(path, headers=headers).status_code == status
            print(f"=== {label} {path}")
            print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
