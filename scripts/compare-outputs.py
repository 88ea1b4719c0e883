#!/usr/bin/env python3
"""Compare the output folders of two flatscape binaries on the shipped scenarios.

    scripts/compare-outputs.py OLD_BINARY NEW_BINARY [SCENARIO.toml ...]

Each scenario (default: every file in scenarios/ except the long network and figure-only ones
listed in SKIP) is run by both binaries into temporary folders, and every file is compared:
 * identical bytes                                    -> "same"
 * CSV with the same header and equal numbers         -> "same numbers" (only the number
   formatting differs: flatscape writes the shortest round-trip form, missing values empty)
 * JSON equal except the timing keys                  -> "same values"
 * PNG/SVG figures are listed as "figure" (drawn text may change on purpose; look at them)
Anything else is a difference, and the exit status is 1. Needs only the Python standard library.
"""
import csv, io, json, math, os, subprocess, sys, tempfile

SKIP = {"network-digits.toml"}
TIMING = {"wall_seconds", "solve_seconds", "seconds", "walker_steps_per_second",
          "transient_cell_steps_per_second", "training_seconds", "total_seconds",
          "seconds_per_epoch_sgd", "seconds_per_epoch_gd"}


def strip_timing(v):
    if isinstance(v, dict):
        return {k: strip_timing(x) for k, x in v.items() if k not in TIMING}
    if isinstance(v, list):
        return [strip_timing(x) for x in v]
    return v


def as_number(s):
    if s in ("", "nan", "NaN"):
        return None
    try:
        return float(s)
    except ValueError:
        return s


def csv_equal(a, b):
    ra = list(csv.reader(io.StringIO(a)))
    rb = list(csv.reader(io.StringIO(b)))
    if len(ra) != len(rb) or ra[:1] != rb[:1]:
        return False
    for x, y in zip(ra[1:], rb[1:]):
        if len(x) != len(y):
            return False
        for u, v in zip(x, y):
            u, v = as_number(u), as_number(v)
            if isinstance(u, float) and isinstance(v, float):
                # The old writers rounded to 9-11 significant digits.
                if not math.isclose(u, v, rel_tol=5e-9, abs_tol=1e-300):
                    return False
            elif u != v:
                return False
    return True


def run(binary, scenario, out):
    r = subprocess.run([binary, "run", scenario, "--out", out, "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{binary} failed on {scenario}: {r.stderr}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    old, new = sys.argv[1], sys.argv[2]
    scenarios = sys.argv[3:] or sorted(
        os.path.join("scenarios", f) for f in os.listdir("scenarios")
        if f.endswith(".toml") and f not in SKIP)
    bad = 0
    for sc in scenarios:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "old"), os.path.join(tmp, "new")
            run(old, sc, a)
            run(new, sc, b)
            files = sorted(set(os.listdir(a)) | set(os.listdir(b)))
            for f in files:
                pa, pb = os.path.join(a, f), os.path.join(b, f)
                if not os.path.exists(pa) or not os.path.exists(pb):
                    verdict = "only in " + ("new" if os.path.exists(pb) else "old")
                else:
                    da, db = open(pa, "rb").read(), open(pb, "rb").read()
                    if da == db:
                        verdict = "same"
                    elif f.endswith((".png", ".svg")):
                        verdict = "figure"
                    elif f.endswith(".csv") and csv_equal(da.decode(), db.decode()):
                        verdict = "same numbers"
                    elif f.endswith(".json") and strip_timing(json.loads(da)) == strip_timing(json.loads(db)):
                        verdict = "same values"
                    else:
                        verdict = "DIFFERENT"
                if verdict in ("DIFFERENT",) or verdict.startswith("only"):
                    bad += 1
                print(f"{sc:50s} {f:36s} {verdict}")
    print(f"{bad} difference(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
