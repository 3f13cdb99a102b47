"""MkDocs hooks: the benchmark results and examples become part of the site.

The guides link ``../benchmarks/...`` and ``../examples/...`` (right when read on GitHub); the
site serves those files under ``benchmarks/`` and ``examples/``, so the links are rewritten and
the files added, and ``mkdocs build --strict`` checks every one of them.
"""

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
SHARED = ("benchmarks", "examples")
KINDS = {".md", ".png", ".py", ".json", ".ipynb"}


@event_priority(50)  # before mkdocs-jupyter's on_files, which turns the examples into pages
def on_files(files, config):
    for top in SHARED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in KINDS and "__pycache__" not in path.parts:
                files.append(File(path.relative_to(ROOT).as_posix(), str(ROOT),
                                  config["site_dir"], config["use_directory_urls"]))  # fmt: skip
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri.startswith(SHARED):
        return markdown
    for top in SHARED:
        markdown = markdown.replace(f"](../{top}/", f"]({top}/")
    return markdown
