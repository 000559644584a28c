"""Command line: ``python -m reludae verify`` runs every claim of the book and prints a table.

Exit status: 0 when every selected claim is verified, 1 when one fails, 2 on a usage error.
"""

import argparse
import json
import logging
import math
import sys

EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m reludae",
        description="Check the book's claims about two-layer ReLU denoising autoencoders.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser("verify", help="run claims and their negative controls")
    verify.add_argument("--claim", action="append", metavar="ID", help="run only this claim (repeatable)")
    verify.add_argument("--chapter", action="append", metavar="NAME", help="run only this chapter's claims")
    verify.add_argument("--full", action="store_true", help="more seeds and larger sizes (slower)")
    verify.add_argument("--seed", type=int, default=0, help="offset added to every seed (default 0)")
    verify.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    verify.add_argument("-v", "--verbose", action="store_true", help="log progress to standard error")

    commands.add_parser("list", help="list the claim ids with their results and statements")
    return parser


def _select(claims, ids, chapters):
    known = {c.id for c in claims}
    unknown = [i for i in ids or [] if i not in known]
    if unknown:
        raise ValueError(f"unknown claim id(s) {', '.join(unknown)}; run 'python -m reludae list' for the ids")
    known_chapters = {c.chapter for c in claims}
    bad = [ch for ch in chapters or [] if ch not in known_chapters]
    if bad:
        raise ValueError(f"unknown chapter(s) {', '.join(bad)}; choose from {', '.join(sorted(known_chapters))}")
    if ids:
        claims = [c for c in claims if c.id in ids]
    if chapters:
        claims = [c for c in claims if c.chapter in chapters]
    return claims


def _json_number(value):
    """Return ``value``, or ``None`` when it is NaN or infinite, which strict JSON cannot encode."""
    return value if math.isfinite(value) else None


def _row(verdict):
    return {
        "id": verdict.claim.id,
        "result": verdict.claim.result,
        "chapter": verdict.claim.chapter,
        "statement": verdict.claim.statement,
        "check": verdict.check.describe(),
        "check_passed": verdict.check.passed,
        "measured": _json_number(verdict.check.measured),
        "predicted": _json_number(verdict.check.predicted),
        "tolerance": _json_number(verdict.check.tolerance),
        "relation": verdict.check.relation,
        "tolerance_source": verdict.claim.tolerance_source,
        "control_setting": verdict.claim.control_setting,
        "control": verdict.control.describe(),
        "control_failed_as_intended": not verdict.control.passed,
        "verified": verdict.passed,
        "seconds": round(verdict.seconds, 2),
    }


def _print_table(rows, out):
    id_width = max([len("id")] + [len(row["id"]) for row in rows])
    result_width = max([len("result")] + [len(row["result"]) for row in rows])
    columns = [("id", id_width), ("result", result_width), ("check", 40), ("control", 42), ("verdict", 9), ("seconds", 7)]
    header = " ".join(name.ljust(width) for name, width in columns)
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in rows:
        cells = [
            row["id"],
            row["result"],
            ("pass  " if row["check_passed"] else "FAIL  ") + row["check"],
            ("fails " if row["control_failed_as_intended"] else "PASSES ") + row["control"],
            "verified" if row["verified"] else "FAILED",
            f"{row['seconds']:.1f}",
        ]
        print(" ".join(str(cell)[:width].ljust(width) for cell, (_, width) in zip(cells, columns)), file=out)
    failed = sum(not row["verified"] for row in rows)
    print(f"{len(rows) - failed} passed, {failed} failed", file=out)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)

    from . import claims as registry

    if args.command == "list":
        claims = registry.all_claims()
        id_width = max(len(c.id) for c in claims)
        result_width = max(len(c.result) for c in claims)
        for c in claims:
            print(f"{c.id:{id_width}}  {c.result:{result_width}}  {c.statement}")
        return 0

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    try:
        selected = _select(registry.all_claims(), args.claim, args.chapter)
    except ValueError as error:
        parser.error(str(error))

    if not registry.all_claims():
        print("no claims are registered; nothing was checked", file=sys.stderr)
        return EXIT_FAILED
    if not selected:
        parser.error("no claim matches both --claim and --chapter; run 'python -m reludae list' for the chapters")

    settings = registry.Settings(full=args.full, seed=args.seed)
    rows = []
    for c in selected:
        if args.verbose:
            logging.getLogger("reludae").info("checking %s", c.id)
        rows.append(_row(registry.evaluate(c.id, settings)))

    if args.json:
        json.dump({"settings": {"full": args.full, "seed": args.seed}, "claims": rows}, sys.stdout, indent=2)
        print()
    else:
        _print_table(rows, sys.stdout)
    return 0 if all(row["verified"] for row in rows) else EXIT_FAILED


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The reader of a pipe (for example `head`) closed it early; that is not an error here.
        sys.stderr.close()
        sys.exit(0)
