#!/usr/bin/python3
"""Rule library tests: every lua-scripts/rules/<id>.lua has tests/lua/<id>.sql with at least two
cases it must flag and two it must pass, each run through `ddlguard check` exactly as a user
would run it (the rule alone, at level deny; `warn` cases at level warn).

Case file format:
    -- case: deny            the rule must deny this migration (a statement of it)
    -- case: warn            ... must warn (run with the rule at level warn)
    -- case: pass            the rule must say nothing
    -- case: set             the rule must tighten a timeout (decision "set")
    -- case: deny env=production   the session's environment for this case
Ends with 'lua: N passed, N failed'; exit status 0 only when nothing failed.
Usage: run.py [DDLGUARD_BINARY] [-k SUBSTRING]"""

import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(REPO, 'lua-scripts', 'rules')


def cases(path):
    out, cur = [], None
    with open(path) as f:
        for line in f:
            m = re.match(r'--\s*case:\s*(deny|warn|pass|set)\b(.*)$', line.strip())
            if m:
                env = re.search(r'env=(\S+)', m.group(2))
                cur = {'expect': m.group(1), 'env': env.group(1) if env else 'default', 'sql': ''}
                out.append(cur)
            elif cur is not None:
                cur['sql'] += line
    return out


def main():
    args = sys.argv[1:]
    only = None
    if '-k' in args:
        i = args.index('-k')
        only = args[i + 1]
        del args[i:i + 2]
    binary = args[0] if args else os.environ.get('DDLGUARD_BIN', os.path.join(REPO, 'build', 'ddlguard'))
    passed = failed = 0
    ids = sorted(f[:-4] for f in os.listdir(RULES) if f.endswith('.lua'))
    for rule in ids:
        if only and only not in rule:
            continue
        path = os.path.join(HERE, rule + '.sql')
        if not os.path.exists(path):
            print(f'FAIL {rule}: no test file tests/lua/{rule}.sql')
            failed += 1
            continue
        cs = cases(path)
        flagged = sum(1 for c in cs if c['expect'] != 'pass')
        clean = sum(1 for c in cs if c['expect'] == 'pass')
        if flagged < 2 or clean < 2:
            print(f'FAIL {rule}: needs at least 2 flagged and 2 passing cases (has {flagged} and {clean})')
            failed += 1
        for n, c in enumerate(cs, 1):
            level = 'warn' if c['expect'] == 'warn' else 'deny'
            cmd = [binary, 'check', '--rules', 'none', '--rule-level', f'{rule}:{level}',
                   '--lua-scripts', os.path.join(REPO, 'lua-scripts'), '--environment', c['env'],
                   '--format', 'json', '-']
            p = subprocess.run(cmd, input=c['sql'], capture_output=True, text=True, timeout=60)
            try:
                findings = json.loads(p.stdout) if p.stdout.strip() else []
            except ValueError:
                findings = None
            mine = [f for f in findings or [] if f['rule'] == rule]
            if findings is None or p.returncode == 2:
                ok, why = False, f'ddlguard check failed (exit {p.returncode}): {p.stderr.strip()[:300]}'
            elif c['expect'] == 'set':
                sets = [f for f in findings if f['decision'] == 'set']
                ok, why = bool(sets), f'expected a timeout, got {findings}'
            elif c['expect'] == 'pass':
                sets = [f for f in findings if f['decision'] == 'set']
                ok, why = not mine and not sets, f'flagged: {(mine or sets)[0]["message"] if (mine or sets) else ""}'
            else:
                ok = any(f['decision'] == c['expect'] for f in mine)
                why = f'expected {c["expect"]}, got {[(f["decision"], f["message"]) for f in findings]}'
            label = f'{rule} case {n} ({c["expect"]})'
            if ok:
                passed += 1
            else:
                failed += 1
                print(f'FAIL {label}: {why}\n    {c["sql"].strip()[:300]}')
    print(f'lua: {passed} passed, {failed} failed')
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
