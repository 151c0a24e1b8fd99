#!/usr/bin/env node
// Generates documents for the differential canonical-JSON test (canon-diff.c): random JSON
// texts (whitespace, key order, escapes, astral characters, controls, nesting) and what Node's
// own JSON.stringify makes of them in ocgate's strict and legacy forms. Node is the reference
// because the other Opencharge implementations are JavaScript. Deterministic for a given seed.
//
// usage: node gen-canon.js <seed> <count> <outfile>
// Each output line is JSON.stringify([input, strict, legacy]); legacy is null when the
// top-level value is not an object. No npm packages.
'use strict';

const fs = require('fs');

if (process.argv.length !== 5) {
    process.stderr.write('usage: node gen-canon.js <seed> <count> <outfile>\n');
    process.exit(2);
}
const seed = Number(process.argv[2]);
const count = Number(process.argv[3]);
const outfile = process.argv[4];
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(count) || count < 1) {
    process.stderr.write('gen-canon.js: seed and count must be integers, count >= 1\n');
    process.exit(2);
}

// sfc32 seeded through splitmix32: small, fast and the same on every Node version.
function makeRng(s) {
    let x = s >>> 0;
    const split = () => {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        return (z ^ (z >>> 16)) >>> 0;
    };
    let a = split(), b = split(), c = split(), d = split();
    const next32 = () => {
        const t = (((a + b) >>> 0) + d) >>> 0;
        d = (d + 1) >>> 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) >>> 0;
        c = ((c << 21) | (c >>> 11)) >>> 0;
        c = (c + t) >>> 0;
        return t;
    };
    for (let i = 0; i < 16; i++) next32();
    return next32;
}
const next32 = makeRng(seed + Math.floor(seed / 0x100000000));
const rand = () => next32() / 0x100000000;
const below = (n) => Math.floor(rand() * n);
const chance = (p) => rand() < p;
const pick = (arr) => arr[below(arr.length)];
const between = (lo, hi) => lo + below(hi - lo + 1);

// What json_key_is_array_index refuses; JavaScript puts such keys first in numeric order.
function isArrayIndex(k) {
    return /^(0|[1-9][0-9]{0,9})$/.test(k) && Number(k) <= 4294967294;
}

// A code point from one of the ranges that matter for escaping and UTF-16 ordering.
function randomCodePoint() {
    switch (below(12)) {
    case 0: return below(0x20);                                     // C0 controls
    case 1: return pick([0x22, 0x5c, 0x2f, 0x7f, 0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff]);
    case 2: return between(0x80, 0x7ff);                            // two bytes
    case 3: return between(0x800, 0xd7ff);                          // three bytes, below D800
    case 4: return between(0xe000, 0xffff);                         // sorts after astral
    case 5: return between(0x10000, 0x10ffff);                      // astral: surrogate pairs
    case 6: return pick([0x1d11e, 0x1f600, 0x10000, 0x10ffff, 0xe000, 0xd7ff]);
    default: return between(0x20, 0x7e);                            // printable ASCII
    }
}

function randomString(maxLen) {
    const n = below(maxLen + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCodePoint(randomCodePoint());
    return s;
}

const WORDS = ['a', 'b', 'B', 'z', 'Z', '_', '', 'id', 'to', 'from', 'amount', 'currency',
    'txid', 'memo', 'ocid', 'reference', 'items', 'é', 'ä', '\u00ff', '\ue000', '\uffff',
    '\u{1d11e}', '\u{1f600}', 'a\u0000', 'a\u0000b', '__proto__', 'constructor', 'toString',
    '01', '-1', '4294967295', '1.5', '1e3', ' 1', '00', '-0'];

function randomKey() {
    for (;;) {
        const k = chance(0.6) ? pick(WORDS) : randomString(6);
        if (!isArrayIndex(k)) return k;
    }
}

function randomInt() {
    switch (below(6)) {
    case 0: return pick([0, 1, -1, 9007199254740991, -9007199254740991, 2147483647,
        -2147483648, 4294967295, 4294967296]);
    case 1: { // anywhere in the safe range
        const v = (next32() & 0x1fffff) * 0x100000000 + next32();
        return chance(0.5) ? -v : v;
    }
    case 2: return -below(1000);
    default: return below(100000);
    }
}

// Builds a value. Objects have a null prototype so that "__proto__" is an ordinary key; keys
// of one document come mostly from a small pool so that nested objects share keys with the
// top level, which is what the legacy allow-list acts on.
function randomValue(depth, maxDepth, pool, budget) {
    budget.n--;
    const container = depth < maxDepth && budget.n > 0 ? 0.45 - depth * 0.03 : 0;
    const r = rand();
    if (r < container / 2) {
        const obj = Object.create(null);
        const n = below(7);
        for (let i = 0; i < n; i++) {
            const k = chance(0.75) ? pick(pool) : randomKey();
            if (Object.prototype.hasOwnProperty.call(obj, k)) continue;
            obj[k] = randomValue(depth + 1, maxDepth, pool, budget);
        }
        return obj;
    }
    if (r < container) {
        const n = below(6);
        const arr = [];
        for (let i = 0; i < n; i++) arr.push(randomValue(depth + 1, maxDepth, pool, budget));
        return arr;
    }
    switch (below(6)) {
    case 0: return pick([true, false, null]);
    case 1: case 2: return randomInt();
    default: return randomString(12);
    }
}

function ws() {
    if (chance(0.7)) return '';
    let s = '';
    const n = between(1, 3);
    for (let i = 0; i < n; i++) s += pick([' ', '\t', '\n', '\r']);
    return s;
}

function hex4(u) {
    const h = u.toString(16).padStart(4, '0');
    return chance(0.5) ? h : h.toUpperCase();
}

// The input side: every legal way of spelling a string, chosen at random per character.
function writeString(s) {
    let out = '"';
    for (const ch of s) {
        const cp = ch.codePointAt(0);
        const short = { 0x22: '\\"', 0x5c: '\\\\', 0x2f: '\\/', 0x08: '\\b', 0x0c: '\\f',
            0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' }[cp];
        const mustEscape = cp < 0x20 || cp === 0x22 || cp === 0x5c;
        if (short !== undefined && (mustEscape || chance(0.3)) && chance(0.7)) {
            out += short;
        } else if (mustEscape || chance(0.15)) {
            if (cp >= 0x10000) {
                const v = cp - 0x10000;
                out += '\\u' + hex4(0xd800 + (v >> 10)) + '\\u' + hex4(0xdc00 + (v & 0x3ff));
            } else {
                out += '\\u' + hex4(cp);
            }
        } else {
            out += ch;
        }
    }
    return out + '"';
}

function writeValue(v) {
    if (v === null) return 'null';
    if (typeof v === 'boolean') return String(v);
    if (typeof v === 'number') return v === 0 && chance(0.2) ? '-0' : String(v);
    if (typeof v === 'string') return writeString(v);
    if (Array.isArray(v)) {
        if (v.length === 0) return '[' + ws() + ']';
        return '[' + v.map((x) => ws() + writeValue(x) + ws()).join(',') + ']';
    }
    const keys = Object.keys(v);
    if (keys.length === 0) return '{' + ws() + '}';
    return '{' + keys.map((k) => ws() + writeString(k) + ws() + ':' + ws() + writeValue(v[k]) +
        ws()).join(',') + '}';
}

// The reference forms, built from what JSON.parse made of the text.
function sortedCopy(v) {
    if (Array.isArray(v)) return v.map(sortedCopy);
    if (v === null || typeof v !== 'object') return v;
    const out = Object.create(null);
    for (const k of Object.keys(v).sort()) out[k] = sortedCopy(v[k]);
    return out;
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// JSON.parse would let "__proto__" set the prototype; the reviver re-creates every object
// with a null prototype so that keys stay ordinary own properties.
function parseText(text) {
    return JSON.parse(text, function (k, v) {
        if (!isPlainObject(v)) return v;
        const o = Object.create(null);
        for (const key of Object.keys(v)) o[key] = v[key];
        return o;
    });
}

const fd = fs.openSync(outfile, 'w');
let chunk = [];
for (let i = 0; i < count; i++) {
    const pool = [];
    const poolSize = between(1, 8);
    while (pool.length < poolSize) pool.push(randomKey());
    const maxDepth = between(1, 10);
    const budget = { n: between(5, 80) };

    let value;
    if (chance(0.05)) {
        value = randomValue(0, maxDepth, pool, budget); // any top-level value
    } else {
        value = Object.create(null);
        const n = between(0, 8);
        for (let j = 0; j < n; j++) {
            const k = chance(0.8) ? pick(pool) : randomKey();
            if (!Object.prototype.hasOwnProperty.call(value, k))
                value[k] = randomValue(1, maxDepth, pool, budget);
        }
    }

    const text = ws() + writeValue(value) + ws();
    const parsed = parseText(text);
    if (JSON.stringify(parsed) !== JSON.stringify(value))
        throw new Error('generator bug: document ' + i + ' does not round-trip: ' + text);
    const strict = JSON.stringify(sortedCopy(parsed));
    const legacy = isPlainObject(parsed)
        ? JSON.stringify(parsed, Object.keys(parsed).sort()) : null;
    chunk.push(JSON.stringify([text, strict, legacy]));
    if (chunk.length === 500 || i === count - 1) {
        fs.writeSync(fd, chunk.join('\n') + '\n');
        chunk = [];
    }
}
fs.closeSync(fd);
