#!/usr/bin/python3
"""Writes docs/rules.md, the index of the rule library, from lua-scripts/rules/*.lua and
docs/rules/<id>.md (so the index cannot drift from the rules). Run after adding a rule."""
import os
import re

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rules = []
for f in sorted(os.listdir(os.path.join(top, 'lua-scripts', 'rules'))):
    if not f.endswith('.lua'):
        continue
    src = open(os.path.join(top, 'lua-scripts', 'rules', f)).read()
    get = lambda k: (re.search(k + r'\s*=\s*"([^"]*)"', src) or [None, ''])[1]
    rid = f[:-4]
    override = re.search(r'override\s*=\s*(true|false)', src)
    rules.append((rid, get('severity'), get('class'), get('default'), get('strict'),
                  override and override.group(1) == 'true', get('summary')))
out = ['# Rule library', '',
       'ddlguard ships one rule per catalog entry (68), each a Lua file in `lua-scripts/rules/`.',
       'Turn the library on with `rules = default` (or `strict`); change any rule\'s level with',
       '`rule_levels = rule-id:deny|warn|off` (per environment: `production/rule-id:deny`); lift an',
       'overridable rule for one statement with `/* ddlguard:allow rule-id reason="…" */`. See',
       '[configuration.md](configuration.md) and [policies.md](policies.md). Every rule has at',
       'least two failing and two passing cases in `tests/lua/<id>.sql`, run through `ddlguard check`.',
       '',
       'Severity: P0 an outage that grows with the table, P1 blocked writes or application errors,',
       'P2 a brief lock or a risk, P3 style. Levels: `deny`, `warn`, `off` in the `default` and `strict`',
       'profiles (for the two timeout rules, any level but off applies the timeout).', '',
       '| rule | severity | class | default | strict | overridable | what it catches |',
       '|---|---|---|---|---|---|---|']
for rid, sev, cls, d, s, o, summary in rules:
    link = f'[{rid}](rules/{rid}.md)' if os.path.exists(os.path.join(top, 'docs', 'rules', rid + '.md')) else rid
    out.append(f'| {link} | {sev} | {cls} | {d} | {s} | {"yes" if o else "no"} | {summary} |')
out.append('')
open(os.path.join(top, 'docs', 'rules.md'), 'w').write('\n'.join(out))
print(f'docs/rules.md: {len(rules)} rules')
