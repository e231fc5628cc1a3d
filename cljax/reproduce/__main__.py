"""``python -m cljax.reproduce PAPER --scale=SCALE [--print_only] ...``.

Mistakes (an unknown paper or scale) end with exit status 2 and one line
naming the valid values, as ``cljax.main`` does.
"""

import argparse
import sys

from cljax.training import compile_cache
from cljax.training import errors
from cljax.training import cli
from cljax.reproduce import _base
from cljax.reproduce import _driver
from cljax.reproduce import _run


class _Parser(argparse.ArgumentParser):

  def error(self, message):
    cli.fail(f"{message} (python -m cljax.reproduce PAPER --scale=SCALE; "
                  f"PAPER in {', '.join(_driver.PAPERS)}, SCALE in "
                  f"{', '.join(_base.SCALES)})", errors.EXIT_CONFIG)


def main(argv=None) -> None:
  parser = _Parser(prog="python -m cljax.reproduce",
                   description=_run.reproduce.__doc__.splitlines()[0])
  parser.add_argument("paper", help=", ".join(_driver.PAPERS))
  parser.add_argument("--scale", required=True, help=", ".join(_base.SCALES))
  parser.add_argument("--print_only", action="store_true",
                      help="print the commands, write nothing")
  parser.add_argument("--allow_stale", action="store_true",
                      help="render runs trained by other loss/model/data "
                      "code than the current one, or at several commits")
  parser.add_argument("--runs_dir", default="runs/reproduce",
                      help="root of the sweep dirs")
  parser.add_argument("--out", default=None,
                      help="results dir (default: experiments/results at "
                      "cpu scale, else <runs_dir>/<paper>/<scale>)")
  parser.add_argument("--compilation_cache", default=None,
                      help="directory of JAX's persistent compilation cache, "
                      f"or 'off' (default: ${compile_cache.ENV}, else "
                      "~/.cache/cljax/jax)")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  compile_cache.enable(args.compilation_cache)
  try:
    _run.reproduce(args.paper, scale=args.scale, runs_dir=args.runs_dir,
                   out=args.out, print_only=args.print_only,
                   allow_stale=args.allow_stale)
  except ValueError as e:
    if cli.debugging():
      raise
    cli.fail(str(e), errors.EXIT_CONFIG)


if __name__ == "__main__":
  main()
