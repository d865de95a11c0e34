"""The PROPOSAL's tables from results.jsonl: python table.py"""
import json, statistics
from pathlib import Path

rows = [json.loads(l) for l in (Path(__file__).parent / "results.jsonl").read_text().splitlines() if l.strip()]
cells = {}
for x in rows:
    name = x["attack"] + ("-adaptive" if x["adaptive"] else "") + ("-lone" if x.get("lone") else "")
    if x.get("split", "iid") != "iid":
        name += f" ({x['split']})"
    if x["rounds"] != 5:
        name += f" [{x['rounds']} rounds]"
    cells.setdefault((x["e"], name), {}).setdefault(x["method"], []).append(x)

def cell(xs):
    if not xs:
        return "—"
    accs = [x["final_accuracy"] for x in xs]
    acc = f"{statistics.mean(accs):.3f}" + (f" ({', '.join(f'{a:.3f}' for a in accs)})" if len(xs) > 1 else "")
    bd = [x["final_backdoor"] for x in xs if x["final_backdoor"] is not None]
    bds = (f"{statistics.mean(bd):.3f}" if bd else "—")
    adv = sum(x["adv_slots"] for x in xs); slots = sum(x["slots"] for x in xs)
    he = statistics.mean(x["honest_excluded_per_round"] for x in xs)
    return f"{acc} / {bds} / {adv}/{slots} ({100*adv/slots:.0f}%) / {he:.1f}"

methods = ["borda", "rule", "multikrum", "rule-q1"]
print("| e | attack | seeds | Borda (paper) | gram-gate (rule) | Multi-Krum (whole Δ) | rule with q = 1 |")
print("| ---: | --- | ---: | --- | --- | --- | --- |")
for (e, name), by in sorted(cells.items(), key=lambda t: (-t[0][0] if t[0][0] else 1, t[0][1])):
    seeds = sorted({x["seed"] for xs in by.values() for x in xs})
    print(f"| {e} | {name} | {','.join(map(str, seeds))} | " + " | ".join(cell(by.get(m)) for m in methods) + " |")
