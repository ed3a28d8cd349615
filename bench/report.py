"""Write one section of docs/benchmarks.md, keeping the other sections as they are."""

import platform
import subprocess
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nFigures measured by `make bench`; each section says how and where.\n"


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    ram = int(memory) // 1024 // 1024
    return f"{cpu}, {cores} cores, {ram} GiB RAM, Python {platform.python_version()}"


def write_section(title: str, body: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else HEADER
    heading = f"## {title}\n"
    section = f"{heading}\n{body.strip()}\n\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text.rstrip() + "\n")
