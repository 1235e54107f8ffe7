#!/usr/bin/env python3
"""Lists functions longer than a limit (default 80 lines) in the project's Rust sources, tests excluded.

Usage: scripts/long-functions.py [LIMIT] [PATH...]   (default paths: src crates)
Brace matching on the text, skipping strings, chars and comments; `#[cfg(test)] mod` blocks and
files under tests/ are left out. Exit status 1 when any function is over the limit.
"""
import os, re, sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"[^"]*"\s+)?fn\s+(\w+)')

def strip(src):
    """The source with string/char literals and comments blanked (newlines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif src.startswith('/*', i):
            j = src.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', src[i:j])); i = j
        elif c == 'r' and re.match(r'r#*"', src[i:i+10]) and (i == 0 or not (src[i-1].isalnum() or src[i-1] == '_')):
            m = re.match(r'r(#*)"', src[i:])
            close = '"' + m.group(1)
            j = src.find(close, i + len(m.group(0)))
            j = n if j < 0 else j + len(close)
            out.append(re.sub(r'[^\n]', ' ', src[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == '\\' else 1
            out.append(re.sub(r'[^\n]', ' ', src[i:j+1])); i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", src[i:i+12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", src[i:i+12])
            out.append(' ' * len(m.group(0))); i += len(m.group(0))
        else:
            out.append(c); i += 1
    return ''.join(out)

def functions(path):
    text = strip(open(path, encoding='utf-8').read())
    lines = text.split('\n')
    skip_until = -1
    for idx, line in enumerate(lines):
        if idx <= skip_until:
            continue
        if re.match(r'\s*#\[cfg\(test\)\]', line):
            # skip the following item (a test module) by brace matching
            skip_until = block_end(lines, idx + 1)
            continue
        m = FN.match(line)
        if not m:
            continue
        end = block_end(lines, idx)
        if end is None:
            continue
        yield m.group(7), idx + 1, end - idx + 1

def block_end(lines, start):
    depth, seen = 0, False
    for j in range(start, len(lines)):
        for ch in lines[j]:
            if ch == '{':
                depth += 1; seen = True
            elif ch == '}':
                depth -= 1
                if seen and depth == 0:
                    return j
            elif ch == ';' and not seen and depth == 0:
                return None  # a declaration without a body
    return None

def main():
    args = sys.argv[1:]
    limit = int(args.pop(0)) if args and args[0].isdigit() else 80
    roots = args or ['src', 'crates']
    long = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            if '/tests' in dirpath or dirpath.endswith('tests') or '/target' in dirpath:
                continue
            for f in files:
                if f.endswith('.rs'):
                    p = os.path.join(dirpath, f)
                    long += [(n, p, name, start) for name, start, n in functions(p) if n > limit]
    for n, p, name, start in sorted(long, reverse=True):
        print(f'{n:5} lines  {p}:{start}  {name}')
    print(f'{len(long)} function(s) over {limit} lines')
    return 1 if long else 0

sys.exit(main())
