"""The docs site builds offline with no warning, and covers what it must.

``mkdocs build --strict`` runs once (a subprocess, into a temp site dir) with
every proxy pointed at a closed local port, so a build that fetched anything
would fail. The built pages are then read back: each public name of the
packages has its API entry, and every anchor of ``docs/conventions.md`` that
the code, tests, experiments and colabs cite exists on the conventions page.
"""

import glob
import importlib
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))
import griffe_cljax  # noqa: E402  (the docs' griffe extension)

# Package -> the public names its API page must show: ``__all__`` where the
# package has one, else the names its module docstring and the user guide
# document.
_PUBLIC = {
    "losses": ("ntxent", "dcl", "nscl", "supcon", "hard_contrastive",
               "debiased_contrastive", "hscl_2022.hscl_2022", "all_losses",
               "cl_nscl", "cross_entropy", "simplex_classifier", "get",
               "spec", "LossSpec", "LOSSES", "AnchorCounts"),
    "sweep": ("run_sweep", "parse_grid", "parse_seeds"),
    "training.compile_cache": ("enable", "default_directory", "ENV"),
    "analysis.checkpoints": ("load", "Run", "read_metrics", "read_config",
                             "saved_steps", "restore_model"),
    "analysis.sweeps": ("read_sweep", "aggregate", "paired"),
}
_PACKAGES = ("losses", "geometry", "probes", "theory", "data", "models",
             "training.evaluators", "training.compile_cache",
             "analysis.checkpoints", "analysis.sweeps", "unconstrained",
             "sweep", "reproduce")
_CITATION = re.compile(r"docs/conventions\.md#([a-z0-9-]+)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
  site_dir = tmp_path_factory.mktemp("site")
  closed = "http://127.0.0.1:9"   # the discard port: nothing listens
  env = dict(os.environ, HTTP_PROXY=closed, HTTPS_PROXY=closed,
             http_proxy=closed, https_proxy=closed, NO_PROXY="",
             no_proxy="", JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-m", "mkdocs", "build", "--strict",
       "--config-file", os.path.join(ROOT, "mkdocs.yml"),
       "--site-dir", str(site_dir)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
  return result, site_dir


def _ids(site_dir, page: str) -> set[str]:
  with open(os.path.join(site_dir, page, "index.html"),
            encoding="utf-8") as f:
    return set(re.findall(r'\bid="([^"]+)"', f.read()))


def test_strict_build_passes_without_a_warning(site):
  result, site_dir = site
  log = result.stdout + result.stderr
  assert result.returncode == 0, log[-8000:]
  noisy = [line for line in log.splitlines()
           if re.search(r"\b(WARNING|ERROR)\b", line)]
  assert not noisy, "\n".join(noisy)
  assert os.path.exists(os.path.join(site_dir, "index.html"))


def test_every_page_is_built(site):
  _, site_dir = site
  docs = os.path.join(ROOT, "docs")
  pages = glob.glob(os.path.join(docs, "**", "*.md"), recursive=True)
  assert len(pages) >= 25, pages
  for page in pages:
    rel = os.path.relpath(page, docs)[:-len(".md")]
    out = "" if rel == "index" else rel
    assert os.path.exists(os.path.join(site_dir, out, "index.html")), rel


@pytest.mark.parametrize("package", _PACKAGES)
def test_api_page_shows_every_public_name(site, package):
  _, site_dir = site
  module = importlib.import_module(f"cljax.{package}")
  names = _PUBLIC.get(package) or module.__all__
  ids = _ids(site_dir, os.path.join("api", package.split(".")[0]))
  missing = [n for n in names if f"cljax.{package}.{n}" not in ids]
  assert not missing, missing


def test_geometry_docstrings_are_completed_and_signatures_real(site):
  # The shared argument descriptions (cljax/_src/docs.py) are filled at import;
  # the decorator-built metrics have their real signature, not the stub's.
  _, site_dir = site
  with open(os.path.join(site_dir, "api", "geometry", "index.html"),
            encoding="utf-8") as f:
    html = f.read()
  assert "{data_args}" not in html and "{axis_name_arg}" not in html
  start = html.index('id="cljax.geometry.zero_sum"')
  heading = re.sub(r"<[^>]+>", "", html[start:start + 3000])
  assert re.search(r"zero_sum\(\s*features,\s*labels", heading), heading[:400]


def _cited_anchors() -> dict[str, list[str]]:
  cited = {}
  for folder in ("cljax", "experiments", "tests", "colabs"):
    for path in glob.glob(os.path.join(ROOT, folder, "**", "*"),
                          recursive=True):
      if not path.endswith((".py", ".ipynb", ".md")):
        continue
      with open(path, encoding="utf-8") as f:
        for anchor in _CITATION.findall(f.read()):
          cited.setdefault(anchor, []).append(os.path.relpath(path, ROOT))
  return cited


def test_every_cited_convention_anchor_exists(site):
  _, site_dir = site
  cited = _cited_anchors()
  # The citations replaced those of the unshipped spec across the package.
  assert len(cited) >= 30, sorted(cited)
  ids = _ids(site_dir, "conventions")
  missing = {a: paths for a, paths in cited.items() if a not in ids}
  assert not missing, missing


def test_no_citation_of_the_unshipped_spec_is_left():
  needle = "papers" + ".md"   # spelled apart so that this file passes
  found = []
  for folder in ("cljax", "experiments", "tests", "colabs", "docs"):
    for path in glob.glob(os.path.join(ROOT, folder, "**", "*"),
                          recursive=True):
      if path.endswith((".py", ".ipynb", ".md")):
        with open(path, encoding="utf-8") as f:
          if needle in f.read():
            found.append(os.path.relpath(path, ROOT))
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    if needle in f.read():
      found.append("README.md")
  assert not found, found


def test_grouped_args_entries_are_split_for_griffe():
  doc = ("Sums.\n\nArgs:\n  a, b: two inputs, which\n    continue here.\n"
         "  c: one.\n\nReturns:\n  x, y: not an Args entry.\n")
  want = ("Sums.\n\nArgs:\n  a: two inputs, which\n    continue here.\n"
          "  b: two inputs, which\n    continue here.\n  c: one.\n\n"
          "Returns:\n  x, y: not an Args entry.")
  assert griffe_cljax.split_grouped_args(doc) == want
