'use strict';
const { describe, it, test, before } = require('node:test');
const assert = require('node:assert');
const { add, divide } = require('../../src/calc');

describe('calc', () => {
  describe('add', () => {
    it('adds two numbers', () => { assert.equal(add(1, 2), 3); });
    it('is wrong on purpose', () => { assert.equal(add(1, 2), 4); });
  });
  describe('divide', () => {
    it('divides', () => { assert.equal(divide(6, 3), 2); });
    it('refuses zero', () => { assert.throws(() => divide(1, 0), /zero/); });
    it('not ready', { skip: 'waiting for a fix' }, () => {});
    it('someday', { todo: true }, () => {});
  });
});

describe('a suite whose hook fails', () => {
  before(() => { throw new Error('setup failed'); });
  it('never runs its body', () => {});
});

test('top-level test with subtests', async (t) => {
  await t.test('first step', () => {});
  await t.test('second step', () => { assert.ok(false); });
});

test('adds two numbers', () => { assert.equal(add(2, 2), 4); });
