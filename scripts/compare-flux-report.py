#!/usr/bin/env python3
"""Prints the Markdown report of scripts/compare-flux.sh from its work folder (Ferry vs Flux).

  compare-flux-report.py WORK SOURCE_CONTROLLERS(0|1) IDLE_SECONDS
"""
import datetime
import difflib
import os
import platform
import statistics
import subprocess
import sys

work, source_controllers, idle = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
SIDES = ("ferry", "flux")


def read(side, name, default=""):
    try:
        with open(os.path.join(work, side, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default


def tsv(side, name):
    rows = {}
    for line in read(side, name).splitlines():
        cols = line.split("\t")
        rows[cols[0]] = cols[1:]
    return rows


def mib(kb):
    return f"{int(kb) / 1024:.1f} MiB" if kb.strip().isdigit() else "–"


def rss_peak(side):
    vals = [int(l.split()[1]) for l in read(side, "rss").splitlines() if len(l.split()) == 2]
    return str(max(vals)) if vals else ""


def lat(side, name):
    vals = read(side, name).split()
    ok = [int(v) for v in vals if v.isdigit()]
    if not vals:
        return "–", None
    med = statistics.median(ok) if ok else None
    text = f"median {med / 1000:.1f} s ({min(ok) / 1000:.1f}–{max(ok) / 1000:.1f} s, n={len(ok)})" if ok else ""
    timeouts = len(vals) - len(ok)
    if timeouts:
        text += f" {timeouts} timed out"
    return text, med


def ratio(a, b):
    try:
        a, b = float(a), float(b)
        return f"{a / b:.2f}" if b else "–"
    except (TypeError, ValueError):
        return "–"


def machine():
    mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
    return f"{os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB, Linux {platform.release()}"


def main():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("## Side by side with Flux\n")
    print(f"`bash scripts/compare-flux.sh`, {now}, {machine()} (shared with other builds), ferry {rev}, "
          "Flux image-reflector-controller v1.2.3 + image-automation-controller v1.2.4. "
          "Flux's figures are the sum of its two controllers.\n")
    print("| measure | Ferry | Flux | Ferry / Flux |\n|---|---|---|---|")
    r = {s: read(s, "ready_ms").strip() for s in SIDES}
    print(f"| controller start to everything settled (seed pushed, all Ready) | {int(r['ferry']) / 1000:.1f} s "
          f"| {int(r['flux']) / 1000:.1f} s | {ratio(r['ferry'], r['flux'])} |" if r["ferry"].isdigit() and r["flux"].isdigit()
          else f"| start to settled | {r['ferry']} | {r['flux']} | – |")
    for name, label in (("rss_settled", "RSS when settled"), ("rss_idle", f"RSS after {idle} s idle")):
        a, b = read("ferry", name).strip(), read("flux", name).strip()
        print(f"| {label} | {mib(a)} | {mib(b)} | {ratio(a, b)} |")
    a, b = rss_peak("ferry"), rss_peak("flux")
    print(f"| peak RSS (1 s samples) | {mib(a)} | {mib(b)} | {ratio(a, b)} |")
    a, b = read("ferry", "idle_cpu").strip(), read("flux", "idle_cpu").strip()
    print(f"| CPU over {idle} s idle (utime+stime) | {a} | {b} | {ratio(a.split()[0] if a else '', b.split()[0] if b else '')} |")
    for name, label in (("lat_poll", "push-to-commit, polling at the seed's 1m interval"),
                        ("lat_hook", "push-to-commit, `requestedAt` on the ImageRepository after the push (a Receiver)")):
        (ta, ma), (tb, mb) = lat("ferry", name), lat("flux", name)
        print(f"| {label} | {ta} | {tb} | {ratio(ma, mb)} |")
    m = read("ferry", "metrics")
    try:
        key = 'gotk_reconcile_duration_seconds_{}{{kind="ImagePolicy",name="backend",namespace="staging"}}'
        vals = {k: float(l.rsplit(" ", 1)[1]) for l in m.splitlines() for k in ("sum", "count") if l.startswith(key.format(k))}
        print(f"| Ferry's pass (every object, one pass), mean of {int(vals['count'])} | {vals['sum'] / vals['count'] * 1000:.0f} ms | – | – |")
    except (KeyError, IndexError, ValueError, ZeroDivisionError):
        pass
    print("| push-to-commit with a registry webhook | not available: `ferry controller --listen` serves "
          "health and metrics only (docs/controller.md); `ferry serve` has it (see Daemon) | needs "
          "notification-controller (not built here) | – |\n")

    cases = {}
    for line in open(os.path.join(work, "conformance-cases.tsv")):
        c = line.rstrip("\n").split("\t")
        cases[c[0]] = c[1:]
    pol = {s: tsv(s, "policies.tsv") for s in SIDES}
    names = sorted(set(pol["ferry"]) | set(pol["flux"]))
    mism = []
    print("### `status.latestRef` of every ImagePolicy\n")
    print("| policy | corpus expects | Flux latestRef | Ferry latestRef | Flux Ready (reason) | Ferry Ready (reason) | same |")
    print("|---|---|---|---|---|---|---|")
    for n in names:
        fl = pol["flux"].get(n, ["(absent)", "", ""])
        fe = pol["ferry"].get(n, ["(absent)", "", ""])
        short = n.split("/")[1]
        exp = cases[short][1] if n.startswith("conformance/") and short in cases else "–"
        title = f"{n} ({cases[short][0]})" if exp != "–" else n
        same = fl[0] == fe[0]
        if not same:
            mism.append(n)
        print(f"| {title} | {exp} | {fl[0] or '–'} | {fe[0] or '–'} | {fl[1]} ({fl[2]}) | {fe[1]} ({fe[2]}) | {'yes' if same else '**no**'} |")
    skipped = [f"{k} ({v[0]}): {v[2]}" for k, v in sorted(cases.items()) if v[2]]
    print(f"\n**{len(mism)} latestRef mismatches** of {len(names)} policies" + (f": {', '.join(mism)}" if mism else "") + ".")
    if skipped:
        print("Corpus cases not applied: " + "; ".join(skipped) + ".")
    reasons = [n for n in names if pol["flux"].get(n, ["", "", ""])[1:] != pol["ferry"].get(n, ["", "", ""])[1:]]
    print(f"Ready status or reason differs for {len(reasons)} policies" + (f": {', '.join(reasons)}" if reasons else "") + ".\n")

    repos = {s: tsv(s, "repos.tsv") for s in SIDES}
    diff_repos = [n for n in sorted(set(repos["ferry"]) | set(repos["flux"]))
                  if repos["ferry"].get(n, [""])[:2] != repos["flux"].get(n, [""])[:2]]
    print(f"ImageRepositories whose `lastScanResult` (tagCount, latestTags) differ: {len(diff_repos)}"
          + (f" ({', '.join(diff_repos)})" if diff_repos else "") + ".\n")

    print("### Files the automations changed\n")
    changed = {s: read(s, "changed").split() for s in SIDES}
    for s in SIDES:
        commits = read(s, "commits").splitlines()
        print(f"- {s}: {len(commits)} commits, {len(changed[s])} files: {', '.join(changed[s])}")
    print()
    for f in sorted(set(changed["ferry"]) | set(changed["flux"])):
        a, b = read("flux", "files/" + f), read("ferry", "files/" + f)
        if a == b:
            print(f"- `{f}`: identical")
            continue
        print(f"- `{f}`: differs (Flux → Ferry):\n\n```diff")
        print("".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), "flux/" + f, "ferry/" + f)).rstrip())
        print("```")
    for s in SIDES:
        d = read(s, "git.diff")
        plus = sum(1 for l in d.splitlines() if l.startswith("+") and not l.startswith("+++"))
        minus = sum(1 for l in d.splitlines() if l.startswith("-") and not l.startswith("---"))
        print(f"\n{s}'s whole write-back against `ferry init`'s files: +{plus} −{minus} lines.")
    print("\n<details><summary>Flux's write-back (git diff)</summary>\n\n```diff\n" + read("flux", "git.diff").rstrip()
          + "\n```\n</details>\n")
    if source_controllers:
        print("### What the cluster runs (Flux's kustomize-controller applied each side's repo)\n")
        live = {s: tsv(s, "live.tsv") for s in SIDES}
        print("| Deployment | Flux side | Ferry side |\n|---|---|---|")
        for n in sorted(set(live["ferry"]) | set(live["flux"])):
            print(f"| {n} | {live['flux'].get(n, ['–'])[0]} | {live['ferry'].get(n, ['–'])[0]} |")
        for s in SIDES:
            if read(s, "live-timeout"):
                print(f"\n{s}: {read(s, 'live-timeout').strip()}")
        print()


main()
