import { test } from 'node:test';
import assert from 'node:assert';
test('déjà vu — ünïcode', () => { assert.ok(true); });
test('adds two numbers', () => { assert.ok(true); });
